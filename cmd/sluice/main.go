// Command sluice is a Kafka-compatible streaming log broker and its
// command-line client. With no command it serves: `go run ./cmd/sluice`
// listens on 127.0.0.1:9092 with data in ./sluice-data.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/sluice-io/sluice/internal/cli"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "A Kafka-compatible streaming log broker",
		Long: `Sluice speaks the Apache Kafka protocol. With no command it runs a
single-node broker (see "sluice serve --help"); the other commands are
clients for a running broker.`,
		Args:          cobra.NoArgs,
		SilenceErrors: false,
		RunE:          runServeCommand,
	}
	// The root serves when given no command, so it takes serve's flags.
	addConfigFlags(root.Flags())
	root.AddCommand(serveCommand())
	root.AddCommand(cli.Commands()...)
	return root
}
