package group

import (
	"errors"
	"testing"
)

var errTest = errors.New("test: disk on fire")

func TestOptionsValidate(t *testing.T) {
	err := Options{MaxGroupSize: -1, MinSessionTimeout: 10, MaxSessionTimeout: 5}.Validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	for _, want := range []string{"Log is required", "Topics is required", "MaxGroupSize", "exceeds MaxSessionTimeout"} {
		if !contains(err.Error(), want) {
			t.Errorf("Validate does not report %q: %v", want, err)
		}
	}
	if err := (Options{Log: nopLog{}, Topics: testTopics}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
