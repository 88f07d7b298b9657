// Package brokertest starts a real Sluice broker on 127.0.0.1 with a
// temporary data directory, for tests of the broker and of the tools built
// on it (the CLI). Everything it starts is stopped by t.Cleanup.
package brokertest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker"
)

// closeTimeout bounds a test broker's shutdown.
const closeTimeout = 10 * time.Second

// Broker is a running test broker.
type Broker struct {
	*broker.Broker
	// Dir is the data directory; it survives Restart.
	Dir  string
	opts broker.Options
	t    testing.TB
}

// Start starts a broker on 127.0.0.1:0 with data in a new temporary
// directory; each option may adjust the broker's Options. Set
// SLUICE_TEST_LOG=1 to see the broker's log.
func Start(t testing.TB, options ...func(*broker.Options)) *Broker {
	t.Helper()
	o := broker.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0"}
	// WAL files are zero-filled to their size: keep test brokers' small.
	o.Storage.WAL.FileBytes = 4 << 20
	// Groups rebalance at once, and the offsets topic is small: tests
	// create many brokers.
	o.Group.InitialRebalanceDelay = -1
	o.OffsetsTopicPartitions = 4
	o.TxnTopicPartitions = 4
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, fn := range options {
		fn(&o)
	}
	b := &Broker{Dir: o.Dir, opts: o, t: t}
	b.start()
	t.Cleanup(func() { b.Close() })
	return b
}

func (b *Broker) start() {
	b.t.Helper()
	bb, err := broker.New(b.opts)
	if err != nil {
		b.t.Fatalf("brokertest: %v", err)
	}
	if err := bb.Start(); err != nil {
		b.t.Fatalf("brokertest: %v", err)
	}
	b.Broker = bb
	// A restart listens on the same address, so clients keep working.
	b.opts.Listen = bb.Addr().String()
}

// Addr returns the broker's host:port.
func (b *Broker) Addr() string { return b.Broker.Addr().String() }

// Close shuts the broker down cleanly; calling it twice is harmless.
func (b *Broker) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := b.Broker.Close(ctx); err != nil {
		b.t.Errorf("brokertest: close: %v", err)
	}
}

// Restart shuts the broker down cleanly and starts it again on the same
// address and data directory.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Close()
	b.start()
}

// Client returns a franz-go client for the broker, closed at cleanup, with
// kgo's defaults (idempotent writes on).
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr()),
		kgo.RetryTimeout(10 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("brokertest: client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the broker, closed at cleanup.
func (b *Broker) Admin(t testing.TB, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t, opts...))
}
