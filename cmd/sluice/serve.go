package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/metrics"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGINT or SIGTERM before connections are cut.
const shutdownTimeout = 30 * time.Second

func serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a single-node broker (the default when no command is given)",
		Long: `Run a single-node Kafka-compatible broker.

Configuration comes from, in increasing precedence: the defaults below, a
YAML file (--config), SLUICE_* environment variables, and flags. Keys use
Kafka's names and units.`,
		Args: cobra.NoArgs,
		RunE: runServeCommand,
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

func runServeCommand(cmd *cobra.Command, _ []string) error {
	if p, _ := cmd.Flags().GetBool("print-config"); p {
		printConfigTable(cmd.OutOrStdout())
		return nil
	}
	cfg, err := loadConfig(cmd.Flags(), nil)
	if err != nil {
		return err
	}
	cmd.SilenceUsage = true
	if path, _ := cmd.Flags().GetString("cpuprofile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, cmd.ErrOrStderr(), nil)
}

// startCPUProfile profiles the process into path until the returned
// function is called (at shutdown), so a benchmark run against the broker
// can be profiled without building a test harness around it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	ho := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// serve runs the broker until ctx is done, then shuts it down cleanly: the
// server lets in-flight requests finish, then the storage engine syncs the
// WAL and writes a checkpoint. started, if set, is called once serving.
func serve(ctx context.Context, cfg serveConfig, logw io.Writer, started func(*broker.Broker)) error {
	log := newLogger(logw, cfg.logFormat, cfg.logLevel)
	cfg.opts.Logger = log
	src := &adminSource{config: cfg.entries}
	var m *metrics.Metrics // nil: metrics off, every hook a no-op
	if !cfg.metricsOff {
		var err error
		m, err = metrics.New(metrics.Options{Source: src, ServerStats: src.serverStats, StorageStats: src.storageStats,
			DiskSpace: metrics.DiskSpace(cfg.opts.Dir), Logger: log})
		if err != nil {
			return err
		}
		cfg.opts.Server.OnResponse = m.ObserveRequest
		cfg.opts.Storage.WAL.OnSync = m.ObserveWALSync
		cfg.opts.Observer = m
	}
	// The admin listener comes up first, so /readyz answers (not ready)
	// while the logs recover.
	var adm *admin.Server
	if cfg.adminAddr != "" || cfg.adminListener != nil {
		ao := admin.Options{Addr: cfg.adminAddr, Listener: cfg.adminListener, Logger: log}
		if m != nil {
			ao.Metrics = m.Handler()
		}
		var err error
		if adm, err = admin.New(ao, src); err != nil {
			return err
		}
		if err := adm.Start(); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = adm.Shutdown(sctx)
		}()
		log.Info("admin listening", "addr", adm.Addr().String())
	}
	start := time.Now()
	b, err := broker.New(cfg.opts)
	if err != nil {
		return err
	}
	m.SetRecovery(time.Since(start))
	if err := b.Start(); err != nil {
		_ = b.Close(context.Background())
		return err
	}
	src.b.Store(b)
	if started != nil {
		started(b)
	}
	<-ctx.Done()
	log.Info("shutting down", "reason", context.Cause(ctx))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.Close(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: requests still running after %v: %w", shutdownTimeout, err)
		}
		return err
	}
	return nil
}
