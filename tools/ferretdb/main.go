// Command ferretdb-sev runs FerretDB v1 with its SQLite backend as a
// MongoDB-wire server for SEV's tests.
//
// It wraps the embeddable package github.com/FerretDB/FerretDB/ferretdb
// because `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`
// builds a binary that panics on the missing build/version/version.txt
// (FerretDB issue #2982); the embeddable package does not need that file.
//
// Usage:
//
//	ferretdb-sev -listen-addr 127.0.0.1:27017 -state-dir /path/to/dir
//
// It serves until SIGTERM or SIGINT, then closes the listener at once and
// exits 0 once FerretDB has shut down: FerretDB gives clients that are still
// connected (idle pooled connections included) 3 s to go away first.
// -shutdown-timeout caps that wait (tests use a short one, so a stop does not
// take 3 s); what was committed is in SQLite's WAL already, so exiting before
// the backend is closed loses nothing. A second signal exits at once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on (host:port)")
	stateDir := flag.String("state-dir", "", "directory for the SQLite databases (created if missing; required)")
	logLevel := flag.String("log-level", "error", "log level: debug, info, warn or error")
	shutdownTimeout := flag.Duration("shutdown-timeout", 0,
		"after SIGTERM/SIGINT, exit after at most this long even if clients are still connected (0: wait for FerretDB)")
	flag.Parse()

	if err := run(*listenAddr, *stateDir, *logLevel, *shutdownTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-sev: %s\n", err)
		os.Exit(1)
	}
}

func run(listenAddr, stateDir, logLevel string, shutdownTimeout time.Duration) error {
	if stateDir == "" {
		return fmt.Errorf("-state-dir is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad -log-level %q: %w", logLevel, err)
	}

	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}

	if err = os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	// The SQLite backend wants a "file:" URI naming an existing directory, ending with "/".
	sqliteURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir) + "/"}).String()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// New binds the listener, so a busy port fails here, before anything is served.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listenAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	logger.Info("ferretdb-sev listening", slog.String("addr", listenAddr), slog.String("sqlite", sqliteURL))

	// Run returns once ctx is canceled and the listener, connections and backend are closed.
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	select {
	case err = <-done:
		return err
	case <-ctx.Done():
	}

	stop() // a second signal now gets the default action: exit at once

	var timeout <-chan time.Time
	if shutdownTimeout > 0 {
		timeout = time.After(shutdownTimeout)
	}

	select {
	case err = <-done:
		return err
	case <-timeout:
		logger.Warn("shutdown timeout reached, exiting with clients still connected")
		return nil
	}
}
