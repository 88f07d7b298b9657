package batch

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines (the pooled zstd decoders run
// synchronously); the franz-go cross-check starts a client and a fake
// broker and must stop both.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
