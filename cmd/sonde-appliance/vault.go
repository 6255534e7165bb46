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
  set NAME [--username U] [--kind K] [--hosts LIST]
        add a credential, or replace the one called NAME; the value is read
        from standard input. --hosts sets the hosts it may be sent to (see
        below); without it a replaced credential keeps its hosts and a new
        one has none
  hosts NAME LIST
        set the hosts credential NAME may be sent to, replacing its list;
        hosts NAME "" removes them all
  list  name, kind, user name, created, last rotated and hosts (never values)
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
  sonde-appliance vault set core-switches --kind snmp-community --hosts 10.1.0.0/16 < community.txt
One trailing line break is removed; an empty value is refused. Typed on a
terminal, the value IS ECHOED (one line, ended with Enter): prefer a pipe or
a file when someone may be watching the screen.

Hosts. A check's configuration comes from the hub and says where to send a
credential; the probes send one only to the hosts its vault entry lists, so
that whoever configures checks on the hub cannot have it sent elsewhere. A
credential without hosts is sent nowhere. LIST is comma-separated, at most
64 of:
  10.0.0.5, 2001:db8::5       an IP address
  10.0.0.0/8, 2001:db8::/32   a network (CIDR)
  switch1.corp                exactly this host name, at whatever address it
                              resolves to
  *.corp                      any name under corp (not corp itself)
e.g. sonde-appliance vault hosts core-switches 10.1.0.0/16,*.sw.corp
A check whose address is a name not listed may still reach the credential's
devices by address: the address it resolves to is checked against the
addresses and networks of the list. 0.0.0.0/0 and ::/0 permit every address.

Kinds: password (the default), token, snmp-community, snmpv3-auth,
snmpv3-priv. A probe takes only its own kinds: the http probe a password
(auth basic) or a token or password (auth bearer); the snmp probe an
snmp-community (v2c), an snmpv3-auth (v3 credential) and an snmpv3-priv
(v3 privCredential). Names: 1 to 64 characters from A-Z a-z 0-9 . _ -,
starting with a letter or a digit.

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
		var hosts hostsFlag
		fs.StringVar(&username, "username", "", "user name")
		fs.StringVar(&kind, "kind", vault.KindPassword, "kind of credential")
		fs.Var(&hosts, "hosts", "comma-separated hosts the credential may be sent to")
		run = func(ctx context.Context) error { return c.set(ctx, username, kind, hosts) }
		positional = 1
	case "hosts":
		run = c.hosts
		positional = 2
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
		case c.name == "hosts" && len(pos) == 1:
			return c.usage(`needs the LIST of hosts after the NAME (comma-separated, e.g. 10.0.0.0/8,*.corp; "" removes them all)`)
		case c.name == "hosts":
			return c.usage("takes a NAME and one LIST; separate the hosts with commas and no spaces, or quote the list")
		case c.name == "set" || c.name == "rotate":
			// Never echo the extra arguments: one may be the value.
			return c.usage("takes one NAME; the value is read from standard input, never from the command line")
		default:
			return c.usage("takes one NAME")
		}
	}
	c.args = pos
	if positional >= 1 {
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

// hostsFlag is --hosts: a comma-separated list, and whether it was given.
type hostsFlag struct {
	given bool
	list  string
}

func (h *hostsFlag) String() string { return h.list }

func (h *hostsFlag) Set(s string) error {
	h.given, h.list = true, s
	return nil
}

// splitHosts splits a comma-separated list of host patterns, dropping
// spaces around them and empty items; "" is no hosts.
func splitHosts(list string) []string {
	var out []string
	for h := range strings.SplitSeq(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// noHostsNote tells the operator that a credential is not usable yet.
func (c *vaultCmd) noHostsNote(name string) {
	fmt.Fprintf(c.stderr, "note: credential %s has no hosts, so no probe will send it anywhere; set them with \"sonde-appliance vault hosts %s LIST\" (e.g. 10.0.0.0/8,*.corp)\n", name, name)
}

func (c *vaultCmd) set(ctx context.Context, username, kind string, hostsArg hostsFlag) error {
	name := c.args[0]
	if !validKind(kind) {
		return fmt.Errorf("unknown kind %q: use one of %s", kind, strings.Join(vault.Kinds(), ", "))
	}
	var hosts []string
	if hostsArg.given {
		hosts = splitHosts(hostsArg.list)
		if len(hosts) == 0 {
			return fmt.Errorf(`--hosts is empty; to remove every host of credential %s, run: sonde-appliance vault hosts %s ""`, name, name)
		}
		// Refuse a bad list before asking for a value that would go nowhere.
		var err error
		if hosts, err = vault.ValidateHosts(hosts); err != nil {
			return err
		}
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
	if err := v.Set(name, username, value, kind, hosts...); err != nil {
		return err
	}
	verb := "replaced"
	if errors.Is(lookupErr, probe.ErrNoCredential) {
		verb = "added"
	}
	cr, err := v.Credential(name)
	if err != nil {
		return err
	}
	if len(cr.Hosts) == 0 {
		fmt.Fprintf(c.stdout, "%s credential %s (%s) in %s; hosts: none\n", verb, name, kind, v.Path())
		c.noHostsNote(name)
		return nil
	}
	fmt.Fprintf(c.stdout, "%s credential %s (%s) in %s; hosts: %s\n", verb, name, kind, v.Path(), strings.Join(cr.Hosts, ", "))
	return nil
}

func (c *vaultCmd) hosts(context.Context) error {
	name := c.args[0]
	hosts, err := vault.ValidateHosts(splitHosts(c.args[1]))
	if err != nil {
		return err
	}
	v, err := c.open(true)
	if err != nil {
		return err
	}
	if err := v.SetHosts(name, hosts); err != nil {
		if errors.Is(err, probe.ErrNoCredential) {
			return fmt.Errorf("%w (add it with \"vault set %s\")", err, name)
		}
		return err
	}
	if len(hosts) == 0 {
		fmt.Fprintf(c.stdout, "removed every host of credential %s in %s\n", name, v.Path())
		c.noHostsNote(name)
		return nil
	}
	fmt.Fprintf(c.stdout, "credential %s in %s may now be sent to %s\n", name, v.Path(), strings.Join(hosts, ", "))
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
	fmt.Fprintln(tw, "NAME\tKIND\tUSERNAME\tCREATED\tLAST ROTATED\tHOSTS")
	for _, e := range entries {
		user := e.Username
		if user == "" {
			user = "-"
		}
		hosts := strings.Join(e.Hosts, ",")
		if hosts == "" {
			hosts = "none (sent nowhere)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, user,
			e.Created.UTC().Format(time.RFC3339), e.Rotated.UTC().Format(time.RFC3339), hosts)
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
