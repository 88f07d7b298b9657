package broker

import (
	"testing"

	"go.uber.org/goleak"
)

// The broker starts goroutines (the server's, the storage engine's, long
// polls); every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
