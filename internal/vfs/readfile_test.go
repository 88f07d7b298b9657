package vfs

import (
	"errors"
	"io/fs"
	"testing"
)

func TestReadFile(t *testing.T) {
	m := NewMem()
	f, err := m.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("hello"), 0)
	f.Close()
	if b, err := ReadFile(m, "a", 0); err != nil || string(b) != "hello" {
		t.Fatalf("unbounded: %q %v", b, err)
	}
	if b, err := ReadFile(m, "a", 5); err != nil || string(b) != "hello" {
		t.Fatalf("at the bound: %q %v", b, err)
	}
	if _, err := ReadFile(m, "a", 4); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("above the bound: %v", err)
	}
	if _, err := ReadFile(m, "missing", 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
