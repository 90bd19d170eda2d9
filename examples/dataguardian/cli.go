package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// envPassword is the environment variable a database password is read from.
const envPassword = "DG_PASSWORD"

// command is one subcommand: its name, what it does, an example and the
// function that parses its arguments and runs it.
type command struct {
	name, args, summary, example string
	run                          func(c *cli, ctx context.Context, args []string) error
}

var commands = []command{
	{name: "backup", run: (*cli).backup, args: "--type TYPE --dsn DSN_OR_PATH --storage DIR [flags]",
		summary: "Back up one datasource into a new run folder {storage}/{job_id}/{YYYY-MM-DD_HHmmss}\n" +
			"and print that folder's path. The job ID defaults to TYPE-NAME, NAME being the database\n" +
			"name or the file/directory name (\"sqlite-app\" for /srv/app.db); set --job-id when two\n" +
			"sources share a name.",
		example: "DG_PASSWORD=... dataguardian backup --type postgres --dsn postgres://app@db:5432/shop --storage /var/backups --compression zstd"},
	{name: "verify", run: (*cli).verify, args: "RUN_DIR [--json]",
		summary: "Check every part of a backup against the sha256 checksums in its manifest.json, and\n" +
			"the whole stream (and SHA256SUMS, when the folder has one). Exits 0 only if every checksum\n" +
			"matches. RUN_DIR is any folder holding a manifest.json: a copied or renamed one works.",
		example: "dataguardian verify /var/backups/sqlite-app/2025-02-13_060001"},
	{name: "restore", run: (*cli).restore, args: "RUN_DIR --dsn DSN_OR_PATH [flags]",
		summary: "Verify every checksum of a backup, then restore it into the target; nothing touches the\n" +
			"target when a checksum fails. A target that already holds data (a non-empty directory or\n" +
			"file, a database with tables) is refused unless --force (restore over it) or --recreate\n" +
			"(drop and recreate the database) is given. With --verify-only, restore into a temporary\n" +
			"database dg_verify_ID on the target's server, check tables and row counts, report and drop\n" +
			"it. RUN_DIR is any folder holding a manifest.json: a copied or renamed one works.",
		example: "dataguardian restore /var/backups/sqlite-app/2025-02-13_060001 --dsn /srv/app-restored.db"},
	{name: "ls", run: (*cli).ls, args: "DIR [--json]",
		summary: "List the backups under a storage directory, newest first, with status (completed,\n" +
			"damaged: a part missing or of the wrong size, incomplete, invalid), datasource type,\n" +
			"compression, size and parts. Sizes only: run verify to check the sha256 checksums.",
		example: "dataguardian ls /var/backups"},
	{name: "serve", run: (*cli).serve, args: "[--listen ADDR] [--data-dir DIR] [--database-url URL] [flags]",
		summary: serveSummary, example: serveExample},
	{name: "token", run: (*cli).token, args: "create|list|revoke [flags]",
		summary: "Manage API tokens directly in the metadata store (no server needed, also while one runs).",
		example: "dataguardian token create --name ci --permissions read,write,backups.run"},
}

// cli runs one command line. Everything it prints goes through stdout and
// stderr, which redact every password it has seen.
type cli struct {
	stdout, stderr *redactingWriter
	getenv         func(string) string
	tty            bool // stderr is a terminal: show progress
	secrets        *secrets
	cmd            *command // the command running, for its --help
}

func newCLI(stdout, stderr io.Writer, getenv func(string) string, tty bool) *cli {
	s := &secrets{}
	var mu sync.Mutex // one lock for both: progress lines and messages never interleave
	return &cli{
		stdout:  &redactingWriter{w: stdout, mu: &mu, secrets: s},
		stderr:  &redactingWriter{w: stderr, mu: &mu, secrets: s},
		getenv:  getenv,
		tty:     tty,
		secrets: s,
	}
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// usageError is a command line that cannot run; it exits with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp ends a command after --help was printed.
var errHelp = errors.New("help printed")

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		w := c.stdout
		if len(args) == 0 {
			w = c.stderr
		}
		c.mainUsage(w)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name != args[0] {
			continue
		}
		c.cmd = &cmd
		err := cmd.run(c, ctx, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, errHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(c.stderr, "dataguardian %s: %v\nRun 'dataguardian %s --help' for usage.\n", cmd.name, err, cmd.name)
			return exitUsage
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintf(c.stderr, "dataguardian %s: %v\n", cmd.name, err)
		return exitFail
	}
	fmt.Fprintf(c.stderr, "dataguardian: unknown command %q\n\n", args[0])
	c.mainUsage(c.stderr)
	return exitUsage
}

func (c *cli) mainUsage(w io.Writer) {
	fmt.Fprintf(w, "DataGuardian: one-shot commands that back up, verify, restore and list backups in a storage\n"+
		"directory, and the server (HTTP API, scheduler, workers) with its API tokens.\n\nUsage:\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  dataguardian %-7s %s\n", cmd.name, cmd.args)
	}
	fmt.Fprintf(w, "\nRun 'dataguardian COMMAND --help' for a command's flags and an example.\n")
}

// flags returns the flag set of cmd with the --json flag every command has.
func (c *cli) flags(name string) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("dataguardian "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by parse
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of text")
	return fs, asJSON
}

// parse parses args, allowing flags before and after the positional
// arguments, and returns exactly npos positional arguments named by names.
// --help prints the command's help on stdout and returns errHelp.
func (c *cli) parse(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.commandUsage(fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < len(names):
		return nil, usagef("missing argument %s", names[len(pos)])
	case len(pos) > len(names):
		return nil, usagef("unexpected argument %q", pos[len(names)])
	}
	return pos, nil
}

func (c *cli) commandUsage(fs *flag.FlagSet) {
	if cmd := c.cmd; cmd != nil {
		fmt.Fprintf(c.stdout, "Usage: dataguardian %s %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", cmd.name, cmd.args, cmd.summary, cmd.example)
	}
	fs.SetOutput(c.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// required returns a usage error naming the first flag whose value is empty.
func required(flags ...[2]string) error {
	for _, f := range flags {
		if f[1] == "" {
			return usagef("flag --%s is required", f[0])
		}
	}
	return nil
}

// printJSON writes v as one indented JSON object on stdout.
func (c *cli) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON output: %w", err)
	}
	_, err = c.stdout.Write(append(b, '\n'))
	return err
}

// reportJSON prints out, a report carrying its own error field, and
// returns err (or the print error when err is nil).
func (c *cli) reportJSON(out any, err error) error {
	if jerr := c.printJSON(out); err == nil {
		return jerr
	}
	return err
}

// logf prints a progress line of a driver to stderr.
func (c *cli) logf(prefix string) func(format string, args ...any) {
	return func(format string, args ...any) {
		c.stderr.line(prefix + " " + fmt.Sprintf(format, args...))
	}
}

// errorText is the message of err for JSON output, "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
