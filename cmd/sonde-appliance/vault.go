package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/vault"
)

const vaultUsage = `usage: sonde-appliance vault COMMAND [NAME] [flags]

Manages the credentials the appliance's checks refer to by name. They are
sealed on this appliance and never sent to the hub.

Commands:
  set NAME [--username U] [--kind K]
        add a credential, or replace the one called NAME; the value is read
        from standard input
  list  name, kind, user name, created and last rotated (never values)
  rm NAME
        remove a credential
  rotate NAME
        give a credential a new value, read from standard input
  rekey --new-key-file | --new-passphrase-file FILE
        seal the vault under a new key file or passphrase; the data key, and
        so the disk buffer and the sealed configuration, stay as they are

Flags of every command:
  --data DIR              the appliance's data dir (default /var/lib/sonde-appliance)
  --passphrase-file FILE  the vault's passphrase (mode 0600), when the vault is
                          sealed with one; otherwise the key file DIR/key is used

Values are never taken from the command line, where shell history and the
process list would keep them. Pipe them in:
  sonde-appliance vault set core-switches --kind snmp-community < community.txt
One trailing line break is removed; an empty value is refused. Typed on a
terminal, the value IS ECHOED (one line, ended with Enter): prefer a pipe or
a file when someone may be watching the screen.

Kinds: password (the default), token, snmp-community, snmpv3-auth,
snmpv3-priv. Names: 1 to 64 characters from A-Z a-z 0-9 . _ -, starting
with a letter or a digit.

Run it as the appliance's user (e.g. sudo -u sonde sonde-appliance vault …),
so the appliance can still read what it writes. The running appliance picks
up changes on its next credential lookup.
`

// vaultCmd is one parsed "vault" subcommand.
type vaultCmd struct {
	name           string
	stdin          io.Reader
	stdout, stderr io.Writer

	dir, passphraseFile string
	args                []string
}

// vaultMain runs "sonde-appliance vault …"; args start after "vault". It
// returns the exit code: 0 done, 1 failed, 2 bad usage.
func vaultMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, vaultUsage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, vaultUsage)
		return 0
	}
	c := &vaultCmd{name: args[0], stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("sonde-appliance vault "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, without the usage
	fs.StringVar(&c.dir, "data", vault.DefaultDir, "the appliance's data dir")
	fs.StringVar(&c.passphraseFile, "passphrase-file", "", "the vault's passphrase file")

	var run func(context.Context) error
	var positional int
	switch c.name {
	case "set":
		var username, kind string
		fs.StringVar(&username, "username", "", "user name")
		fs.StringVar(&kind, "kind", vault.KindPassword, "kind of credential")
		run = func(ctx context.Context) error { return c.set(ctx, username, kind) }
		positional = 1
	case "list":
		run = c.list
	case "rm":
		run = c.remove
		positional = 1
	case "rotate":
		run = c.rotate
		positional = 1
	case "rekey":
		var newKeyFile bool
		var newPassphraseFile string
		fs.BoolVar(&newKeyFile, "new-key-file", false, "generate a new key file")
		fs.StringVar(&newPassphraseFile, "new-passphrase-file", "", "the new passphrase file")
		run = func(context.Context) error { return c.rekey(newKeyFile, newPassphraseFile) }
	default:
		fmt.Fprintf(stderr, "sonde-appliance vault: unknown command %q; run \"sonde-appliance vault help\"\n", c.name)
		return 2
	}

	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return c.usage("%v", err)
	}
	if len(pos) != positional {
		switch {
		case positional == 0:
			return c.usage("takes no arguments besides flags")
		case len(pos) == 0:
			return c.usage("needs the credential's NAME")
		case c.name == "set" || c.name == "rotate":
			// Never echo the extra arguments: one may be the value.
			return c.usage("takes one NAME; the value is read from standard input, never from the command line")
		default:
			return c.usage("takes one NAME")
		}
	}
	c.args = pos
	if positional == 1 {
		if err := vault.ValidateName(pos[0]); err != nil {
			return c.usage("%v", err)
		}
	}
	if err := run(ctx); err != nil {
		fmt.Fprintf(stderr, "sonde-appliance vault %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func (c *vaultCmd) usage(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "sonde-appliance vault %s: %s; run \"sonde-appliance vault help\"\n", c.name, fmt.Sprintf(format, args...))
	return 2
}

// parseInterspersed lets flags follow positional arguments ("set NAME
// --kind token"), which the flag package alone stops parsing at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// After "--" everything is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (c *vaultCmd) open(mustExist bool) (*vault.Vault, error) {
	return vault.Open(c.dir, vault.Options{
		PassphraseFile: c.passphraseFile,
		MustExist:      mustExist,
		Logger:         slog.New(slog.NewTextHandler(c.stderr, nil)),
	})
}

func (c *vaultCmd) set(ctx context.Context, username, kind string) error {
	name := c.args[0]
	if !validKind(kind) {
		return fmt.Errorf("unknown kind %q: use one of %s", kind, strings.Join(vault.Kinds(), ", "))
	}
	v, err := c.open(false)
	if err != nil {
		return err
	}
	_, lookupErr := v.Credential(name)
	value, err := readValue(ctx, c.stdin, c.stderr, name)
	if err != nil {
		return err
	}
	if err := v.Set(name, username, value, kind); err != nil {
		return err
	}
	verb := "replaced"
	if errors.Is(lookupErr, probe.ErrNoCredential) {
		verb = "added"
	}
	fmt.Fprintf(c.stdout, "%s credential %s (%s) in %s\n", verb, name, kind, v.Path())
	return nil
}

func validKind(kind string) bool {
	for _, k := range vault.Kinds() {
		if k == kind {
			return true
		}
	}
	return false
}

func (c *vaultCmd) list(context.Context) error {
	v, err := c.open(true)
	if err != nil {
		return err
	}
	entries := v.List()
	if len(entries) == 0 {
		fmt.Fprintf(c.stdout, "no credentials in %s\n", v.Path())
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tUSERNAME\tCREATED\tLAST ROTATED")
	for _, e := range entries {
		user := e.Username
		if user == "" {
			user = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, user,
			e.Created.UTC().Format(time.RFC3339), e.Rotated.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func (c *vaultCmd) remove(context.Context) error {
	v, err := c.open(true)
	if err != nil {
		return err
	}
	if err := v.Remove(c.args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed credential %s from %s\n", c.args[0], v.Path())
	return nil
}

func (c *vaultCmd) rotate(ctx context.Context) error {
	name := c.args[0]
	v, err := c.open(true)
	if err != nil {
		return err
	}
	// Fail before asking for a value that would go nowhere.
	if _, err := v.Credential(name); err != nil {
		return fmt.Errorf("%w (add it with \"vault set %s\")", err, name)
	}
	value, err := readValue(ctx, c.stdin, c.stderr, name)
	if err != nil {
		return err
	}
	if err := v.Rotate(name, value); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "rotated credential %s in %s\n", name, v.Path())
	return nil
}

func (c *vaultCmd) rekey(newKeyFile bool, newPassphraseFile string) error {
	if newKeyFile == (newPassphraseFile != "") {
		return errors.New("give exactly one of --new-key-file and --new-passphrase-file")
	}
	v, err := c.open(true)
	if err != nil {
		return err
	}
	if err := v.Rekey(vault.Options{PassphraseFile: newPassphraseFile}); err != nil {
		return err
	}
	if newKeyFile {
		fmt.Fprintf(c.stdout, "rekeyed %s: it is now sealed by the new key file %s; back it up, and start the appliance without --passphrase-file\n",
			v.Path(), c.dir+string(os.PathSeparator)+vault.KeyFileName)
	} else {
		fmt.Fprintf(c.stdout, "rekeyed %s: it is now sealed by the passphrase in %s; start the appliance with --passphrase-file %s (without it the vault cannot be opened)\n",
			v.Path(), newPassphraseFile, newPassphraseFile)
	}
	return nil
}

// readValue reads a credential's value from stdin: one line from a
// terminal (echoed: there is no portable way to turn echo off without
// golang.org/x/term), or everything from a pipe or file. One trailing line
// break is removed.
func readValue(ctx context.Context, stdin io.Reader, stderr io.Writer, name string) (secret.Secret, error) {
	terminal := false
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			terminal = true
			fmt.Fprintf(stderr, "value for %s (echoed as you type; end with Enter): ", name)
		}
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Reading cannot be interrupted; on cancellation this goroutine is
		// left to the process's exit.
		limited := io.LimitReader(stdin, vault.MaxSecretLen+3)
		var b []byte
		var err error
		if terminal {
			b, err = bufio.NewReader(limited).ReadBytes('\n')
			if errors.Is(err, io.EOF) {
				err = nil
			}
		} else {
			b, err = io.ReadAll(limited)
		}
		done <- result{b, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return secret.Secret{}, fmt.Errorf("reading the value: %w", ctx.Err())
	case r = <-done:
	}
	defer clear(r.b)
	if r.err != nil {
		return secret.Secret{}, fmt.Errorf("reading the value from standard input: %w", r.err)
	}
	b := r.b
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	switch {
	case len(b) == 0:
		return secret.Secret{}, errors.New("refusing an empty value: give it on standard input, e.g. \"sonde-appliance vault set NAME < value.txt\"")
	case len(b) > vault.MaxSecretLen:
		return secret.Secret{}, fmt.Errorf("the value is longer than %d bytes", vault.MaxSecretLen)
	}
	return secret.New(string(b)), nil
}
