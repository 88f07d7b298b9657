package group

import (
	"errors"
	"testing"
)

var errTest = errors.New("test: disk on fire")

func TestPartition(t *testing.T) {
	// Expected values from Java's String.hashCode, abs'd as Kafka's
	// Utils.abs does, modulo 50.
	for _, tc := range []struct {
		id   string
		want int32
	}{
		{"my-group", 12},
		{"test-group", 12},
		{"", 0},
		{"console-consumer-12345", 6},
		{"grüppe-😀", 14},          // non-ASCII and a surrogate pair
		{"polygenelubricants", 0}, // hashCode is MinInt32
	} {
		if got := Partition(tc.id, 50); got != tc.want {
			t.Errorf("Partition(%q, 50) = %d, want %d", tc.id, got, tc.want)
		}
	}
	if got := Partition("x", 0); got != 0 {
		t.Errorf("Partition with n=0 = %d", got)
	}
}

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
