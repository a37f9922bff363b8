// Command parley is the one command-line tool of Parley: it runs a party's
// node or a mediator, creates and signs the agreement, submits
// notifications and verifies exchange logs offline.
//
// Usage:
//
//	parley <command> [flags] [arguments]
//
// Run "parley help" for the list of commands and "parley <command> -h" for
// the flags of one. Every command logs with log/slog to standard error: JSON
// when standard output is not a terminal, text otherwise; -v enables debug
// logging. A command that fails prints one line, "parley <command>: <error>",
// to standard error and exits with status 1, or 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/term"
	"k8s.io/klog/v2"
)

// command is one subcommand of parley. Files of this package register their
// commands in commands from an init function.
type command struct {
	// summary is the one-line description shown by "parley help".
	summary string
	// usage is the text shown by "parley <command> -h" before the flag
	// defaults: a synopsis line, then a description.
	usage string
	// run runs the command with the arguments after its name. It returns
	// flag.ErrHelp after printing its usage for -h, and a usage error (see
	// usageErrorf) for bad flags or arguments.
	run func(ctx context.Context, env *Env, args []string) error
}

// commands maps each command name to its command. It is filled by init
// functions and only read afterwards.
var commands = map[string]*command{}

// Env is what a command may use of its process: its output streams and its
// logger. Commands never write to os.Stdout or os.Stderr directly, so that
// tests can run them in-process.
type Env struct {
	// Stdout receives the command's results.
	Stdout io.Writer
	// Stderr receives diagnostics; Logger writes to it.
	Stderr io.Writer
	// Logger is the command's logger.
	Logger *slog.Logger

	// level is Logger's level; a command's -v flag lowers it to Debug.
	level *slog.LevelVar
}

// usageError is an error in the flags or arguments of a command.
type usageError struct {
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// subcommandError is an error of a subcommand, such as "agreement
// create": Main names the subcommand in its message.
type subcommandError struct {
	name string
	err  error
}

func (e subcommandError) Error() string { return e.err.Error() }
func (e subcommandError) Unwrap() error { return e.err }

// exitError is an error for which Main exits with a status of its own
// (such as 3 from "parley audit" when it finds misbehaviour).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// usageErrorf returns a usage error: Main prints it with a pointer to the
// command's -h and exits with status 2.
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs parley with args (without the program name) and returns the
// process exit status: 0 on success, 1 when the command failed, 2 for a
// usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	level := new(slog.LevelVar)
	env := &Env{
		Stdout: stdout,
		Stderr: stderr,
		Logger: newLogger(stdout, stderr, level),
		level:  level,
	}
	// Tessera logs through klog; route it to the same structured logger.
	klog.SetSlogLogger(env.Logger)
	if len(args) == 0 {
		printCommands(stderr)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 0 {
			printCommands(stdout)
			return 0
		}
		// "parley help <command>" is "parley <command> -h".
		if _, ok := commands[args[0]]; !ok {
			fmt.Fprintf(stderr, "parley help: unknown command %q\n\n", args[0])
			printCommands(stderr)
			return 2
		}
		name, args = args[0], []string{"-h"}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "parley: unknown command %q\n\n", name)
		printCommands(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, env, args)
	var (
		uerr usageError
		serr subcommandError
	)
	if errors.As(err, &serr) {
		name += " " + serr.name
	}
	var xerr exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &xerr):
		fmt.Fprintf(stderr, "parley %s: %v\n", name, oneLine(err))
		return xerr.code
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "parley %s: %v (see 'parley %s -h')\n", name, oneLine(err), name)
		return 2
	default:
		fmt.Fprintf(stderr, "parley %s: %v\n", name, oneLine(err))
		return 1
	}
}

// oneLine returns err's message on one line: errors.Join puts line breaks
// between the errors it joins.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// newLogger returns the logger of a command: JSON to stderr when stdout is
// not a terminal (a service manager or a pipe reads it), text otherwise.
func newLogger(stdout, stderr io.Writer, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal(stdout) {
		return slog.New(slog.NewTextHandler(stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(stderr, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printCommands writes the list of commands, sorted, with their summaries.
func printCommands(w io.Writer) {
	fmt.Fprint(w, "Parley exchanges signed notifications of military activity between rival parties.\n\n")
	fmt.Fprint(w, "Usage:\n\n\tparley <command> [flags] [arguments]\n\nCommands:\n\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		fmt.Fprintf(tw, "\t%s\t%s\n", name, commands[name].summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun 'parley <command> -h' for the flags of a command.\n")
}

// newFlagSet returns an empty flag set for the (sub)command name, for
// parseFlags. It adds -v, which turns on debug logging.
func (env *Env) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolFunc("v", "log at debug level", func(string) error {
		if env.level != nil {
			env.level.Set(slog.LevelDebug)
		}
		return nil
	})
	return fs
}

// parseFlags parses args with fs, allowing flags after positional
// arguments ("--" ends the flags), and returns the positional arguments. For
// -h it prints usage and the flag defaults to env.Stdout and returns
// flag.ErrHelp; a bad flag yields a usage error.
func (env *Env) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Stdout, fs, usage)
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, usageError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at the first positional argument, or after "--".
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printUsage writes usage, then the defaults of fs's flags.
func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	fmt.Fprint(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
