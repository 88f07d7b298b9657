package coord

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

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

func TestErrorResponse(t *testing.T) {
	resp := ErrorResponse(kmsg.NewPtrHeartbeatRequest(), 16).(*kmsg.HeartbeatResponse)
	if resp.ErrorCode != 16 {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	// A response without a top-level ErrorCode is answered empty.
	if _, ok := ErrorResponse(kmsg.NewPtrMetadataRequest(), 16).(*kmsg.MetadataResponse); !ok {
		t.Fatal("no response")
	}
}
