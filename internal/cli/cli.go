// Package cli holds the client-side commands of the sluice binary: topic
// administration, consumer groups, produce, consume and bench. They are thin
// shells over franz-go's kgo and kadm, so what they do is what any Kafka
// client would do against the broker; nothing here reaches into the broker's
// packages.
//
// Every command reads and writes through cobra's In/Out/Err streams, which
// lets tests drive them in process against a broker they start themselves.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BrokersEnv names the environment variable that supplies the broker list
// when -b is not given.
const BrokersEnv = "SLUICE_BROKERS"

// DefaultBrokers is where a broker started with `sluice` (no flags) listens.
const DefaultBrokers = "127.0.0.1:9092"

// Sentinel errors. Commands wrap them with the offending input.
var (
	ErrUsage     = errors.New("cli: bad usage")
	ErrBadOffset = errors.New("cli: bad offset")
	ErrBadFormat = errors.New("cli: bad format")
	ErrFailed    = errors.New("cli: some operations failed")
)

// Commands returns the client commands, ready for root.AddCommand. Each
// top-level command carries its own -b/--brokers so it works whatever the
// root defines.
func Commands() []*cobra.Command {
	return []*cobra.Command{
		topicCommand(),
		produceCommand(),
		consumeCommand(),
		benchCommand(),
		groupCommand(),
	}
}

// globals are the connection flags shared by one command tree.
type globals struct {
	brokers string
	verbose bool
}

func (g *globals) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.brokers, "brokers", "b", DefaultBrokers,
		"comma-separated bootstrap brokers (env "+BrokersEnv+")")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log client activity to stderr")
}

// seeds resolves the broker list: an explicit flag wins, then the
// environment, then the default.
func (g *globals) seeds(cmd *cobra.Command) []string {
	s := g.brokers
	if f := cmd.Flags().Lookup("brokers"); f != nil && !f.Changed {
		if env := strings.TrimSpace(os.Getenv(BrokersEnv)); env != "" {
			s = env
		}
	}
	return splitList(s)
}

// clientOpts are the options every client of this package starts from.
func (g *globals) clientOpts(cmd *cobra.Command) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(g.seeds(cmd)...),
		kgo.ClientID("sluice-cli"),
	}
	if g.verbose {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(cmd.ErrOrStderr(), kgo.LogLevelInfo, nil)))
	}
	return opts
}

// admin opens a kgo client wrapped for admin requests. The caller closes it.
func (g *globals) admin(cmd *cobra.Command) (*kadm.Client, error) {
	cl, err := kgo.NewClient(g.clientOpts(cmd)...)
	if err != nil {
		return nil, fmt.Errorf("cli: connecting: %w", err)
	}
	return kadm.NewClient(cl), nil
}

// signalContext returns the command's context, cancelled on SIGINT or
// SIGTERM so long-running commands (consume, bench) stop cleanly and still
// print what they have.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// timeoutContext bounds one admin operation.
func timeoutContext(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signalContext(cmd)
	tctx, cancel := context.WithTimeout(ctx, d)
	return tctx, func() { cancel(); stop() }
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseKV parses key=value pairs (the value may contain '=').
func parseKV(pairs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrUsage, p)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// errText renders a per-item Kafka error with the broker's message, if any.
func errText(err error, msg string) string {
	if err == nil {
		return "OK"
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return err.Error() + ": " + msg
	}
	return err.Error()
}

// stderrf writes a status line to the command's stderr.
func stderrf(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), format, args...)
}
