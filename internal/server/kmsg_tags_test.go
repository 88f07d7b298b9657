package server

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A flexible request whose tagged-field count is forged to 2^32-1 with
// nothing behind it must fail to decode at once. Upstream kmsg counts the
// tags down anyway: this 7-byte ApiVersions v3 body cost a minute of CPU.
// third_party/kmsg stops when the input runs out.
func TestForgedTagCountDecodesQuickly(t *testing.T) {
	// Two empty compact strings, then a tag count of 0xffffffff as a
	// uvarint, and no tags.
	body := []byte{0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	start := time.Now()
	err := req.ReadFrom(body)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("decoding a forged tag count took %v", d)
	}
	if err == nil {
		t.Fatal("a forged tag count decoded without error")
	}
}
