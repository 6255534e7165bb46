package hardening

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The sshd configuration as OpenSSH's sshd reads it (servconf.c): one
// keyword per line, case-insensitive, separated from its arguments by
// spaces or one '='; arguments may be quoted; an unquoted '#' starting an
// argument ends the line. Include reads files in place (globs sorted,
// relative paths under /etc/ssh); for most keywords the first value read
// wins; lines after a Match line belong to that Match block (until the next
// Match, "Match all", or the end of the included file holding it) and are
// not part of the global configuration.

const (
	// sshdConfigPath is where sshd reads its configuration.
	sshdConfigPath = "/etc/ssh/sshd_config"
	// sshDir resolves relative Include paths, as sshd does.
	sshDir = "/etc/ssh"
	// maxIncludeDepth is sshd's own limit (SERVCONF_MAX_DEPTH).
	maxIncludeDepth = 16
	// maxIncludedFiles and maxConfigTotal bound the work of a
	// configuration that includes many (or large) files.
	maxIncludedFiles = 256
	maxConfigTotal   = 8 << 20
)

// errSSHConfig is wrapped by every reason the configuration cannot be read
// as sshd would.
var errSSHConfig = errors.New("sshd configuration")

// sshLine is one keyword line.
type sshLine struct {
	Key   string // canonical: lower case, aliases resolved
	Word  string // the keyword as written
	Args  []string
	File  string
	Line  int
	Block int // 0: global; N: inside Match block N
}

// source is where the line is, as file:line.
func (l sshLine) source() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// sshMatch is one Match block.
type sshMatch struct {
	N        int
	Criteria string
	File     string
	Line     int
}

// sshConfig is the configuration as read, in sshd's reading order.
type sshConfig struct {
	Lines   []sshLine
	Matches []sshMatch
}

// sshAliases maps old keyword names to the one sshd stores them under.
var sshAliases = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
}

func canonicalKey(word string) string {
	k := strings.ToLower(word)
	if c, ok := sshAliases[k]; ok {
		return c
	}
	return k
}

// parseSSHDConfig reads the configuration starting at p (an absolute path
// as sshd sees it) from fsys, following Includes.
func parseSSHDConfig(fsys fs.FS, p string) (*sshConfig, error) {
	ps := &sshParser{fsys: fsys, cfg: &sshConfig{}}
	if err := ps.file(p, 0, 0); err != nil {
		return nil, err
	}
	return ps.cfg, nil
}

type sshParser struct {
	fsys  fs.FS
	cfg   *sshConfig
	stack []string // files being read, outermost first
	files int
	total int64
}

func (ps *sshParser) file(p string, block, depth int) error {
	for _, open := range ps.stack {
		if open == p {
			return fmt.Errorf("%w: Include loop: %s", errSSHConfig, strings.Join(append(ps.stack, p), " includes "))
		}
	}
	if depth > maxIncludeDepth {
		return fmt.Errorf("%w: Includes nested more than %d deep (%s …)", errSSHConfig, maxIncludeDepth, strings.Join(ps.stack[:3], " includes "))
	}
	if ps.files++; ps.files > maxIncludedFiles {
		return fmt.Errorf("%w: more than %d files included", errSSHConfig, maxIncludedFiles)
	}
	b, err := readFileFS(ps.fsys, p, maxConfigSize)
	if err != nil {
		return fmt.Errorf("%w: %w", errSSHConfig, err)
	}
	if ps.total += int64(len(b)); ps.total > maxConfigTotal {
		return fmt.Errorf("%w: the included files hold more than %s", errSSHConfig, sizeText(maxConfigTotal))
	}
	ps.stack = append(ps.stack, p)
	defer func() { ps.stack = ps.stack[:len(ps.stack)-1] }()

	for n, text := range strings.Split(string(b), "\n") {
		word, args, err := splitSSHLine(text)
		if err != nil {
			return fmt.Errorf("%w: %s:%d: %v", errSSHConfig, p, n+1, err)
		}
		if word == "" {
			continue
		}
		key := canonicalKey(word)
		switch key {
		case "match":
			if len(args) == 1 && strings.EqualFold(args[0], "all") {
				block = 0 // "Match all" goes back to the global section
				continue
			}
			m := sshMatch{N: len(ps.cfg.Matches) + 1, Criteria: strings.Join(args, " "), File: p, Line: n + 1}
			ps.cfg.Matches = append(ps.cfg.Matches, m)
			block = m.N
		case "include":
			for _, pattern := range args {
				if err := ps.include(pattern, block, depth); err != nil {
					return err
				}
			}
		default:
			ps.cfg.Lines = append(ps.cfg.Lines, sshLine{Key: key, Word: word, Args: args, File: p, Line: n + 1, Block: block})
		}
	}
	return nil
}

// include reads the files matching one Include argument in place. The
// included files start in the block of the Include line; a Match inside
// them ends with them, as in sshd (which restores its state after an
// Include).
func (ps *sshParser) include(pattern string, block, depth int) error {
	if !path.IsAbs(pattern) {
		pattern = path.Join(sshDir, pattern)
	}
	name := strings.TrimPrefix(path.Clean(pattern), "/")
	if name == "" {
		name = "."
	}
	matches, err := fs.Glob(ps.fsys, name)
	if err != nil {
		return fmt.Errorf("%w: Include %s: %v", errSSHConfig, pattern, err)
	}
	sort.Strings(matches) // glob(3) order: byte order of the whole path
	for _, m := range matches {
		if err := ps.file("/"+m, block, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// splitSSHLine splits a line into its keyword and arguments as sshd does
// (strdelim for the keyword, argv_split for the arguments). A blank or
// comment line gives an empty keyword.
func splitSSHLine(s string) (string, []string, error) {
	s = strings.TrimRight(s, " \t\r\f")
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return "", nil, nil
	}
	end := strings.IndexAny(s, " \t=")
	if end < 0 {
		return "", nil, fmt.Errorf("no argument after keyword %q", s)
	}
	word, rest := s[:end], strings.TrimLeft(s[end:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	if word == "" {
		return "", nil, errors.New("a line starts with '='")
	}
	args, err := splitArgs(rest)
	if err != nil {
		return "", nil, err
	}
	if len(args) == 0 {
		return "", nil, fmt.Errorf("no argument after keyword %q", word)
	}
	return word, args, nil
}

// splitArgs is OpenSSH's argv_split with comments ending the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			continue
		}
		if s[i] == '#' {
			break
		}
		var arg strings.Builder
		var quote byte
	token:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || quote == 0 && s[i+1] == ' '):
				i++
				arg.WriteByte(s[i])
			case quote == 0 && (c == ' ' || c == '\t'):
				break token
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				arg.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, errors.New("invalid quotes")
		}
		args = append(args, arg.String())
	}
	return args, nil
}

// sshSetting is the value of one keyword and where it came from.
type sshSetting struct {
	Args   []string
	Source string // file:line, "sshd -T", or "" for OpenSSH's default
	Word   string // the keyword as written, when from a file
}

// value is the first argument, or "" when absent.
func (s sshSetting) value() string {
	if len(s.Args) == 0 {
		return ""
	}
	return s.Args[0]
}

// fromFile reports whether the setting is a line of a file (so advice can
// name the line to change).
func (s sshSetting) fromFile() bool { return s.Source != "" && s.Source != sourceSSHDT }

// sourceSSHDT marks values read from `sshd -T`.
const sourceSSHDT = "sshd -T"

// sshMulti are the keywords whose every line counts (they accumulate)
// instead of the first.
var sshMulti = map[string]bool{"allowusers": true, "allowgroups": true, "denyusers": true, "denygroups": true, "port": true}

// sshView is a configuration as one connection sees it: the first value of
// each keyword, and every value of the accumulating ones.
type sshView struct {
	first map[string]sshSetting
	all   map[string][]sshSetting
}

func newSSHView() sshView {
	return sshView{first: map[string]sshSetting{}, all: map[string][]sshSetting{}}
}

func (v sshView) add(key string, s sshSetting) {
	if sshMulti[key] {
		v.all[key] = append(v.all[key], s)
	}
	if _, ok := v.first[key]; !ok {
		v.first[key] = s
	}
}

// get returns the effective setting of key and whether it is set.
func (v sshView) get(key string) (sshSetting, bool) {
	s, ok := v.first[key]
	return s, ok
}

// globalView is the configuration outside every Match block.
func (c *sshConfig) globalView() sshView {
	v := newSSHView()
	for _, l := range c.Lines {
		if l.Block == 0 {
			v.add(l.Key, sshSetting{Args: l.Args, Source: l.source(), Word: l.Word})
		}
	}
	return v
}

// blockSettings returns the first value of each keyword inside Match block n.
func (c *sshConfig) blockSettings(n int) map[string]sshSetting {
	out := map[string]sshSetting{}
	for _, l := range c.Lines {
		if l.Block != n {
			continue
		}
		if _, ok := out[l.Key]; !ok {
			out[l.Key] = sshSetting{Args: l.Args, Source: l.source(), Word: l.Word}
		}
	}
	return out
}

// overlay is global as seen by a connection that matches a block setting
// set: the block's values replace the global ones.
func (v sshView) overlay(set map[string]sshSetting) sshView {
	out := newSSHView()
	for k, s := range set {
		out.first[k] = s
	}
	for k, s := range v.first {
		if _, ok := out.first[k]; !ok {
			out.first[k] = s
		}
	}
	for k, s := range v.all {
		out.all[k] = s
	}
	return out
}

// parseSSHDT reads the output of `sshd -T`: one lower-case keyword and its
// value per line, accumulating keywords repeated.
func parseSSHDT(out []byte) (sshView, error) {
	v := newSSHView()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v.add(canonicalKey(f[0]), sshSetting{Args: f[1:], Source: sourceSSHDT})
	}
	if _, ok := v.first["passwordauthentication"]; !ok {
		return v, errors.New("its output has no passwordauthentication line")
	}
	return v, nil
}

// parseSSHTime reads an sshd time value (convtime): a sequence of numbers
// each with an optional unit s, m, h, d or w (seconds without one), e.g.
// "90", "1m30s", "1h30m". It returns seconds.
func parseSSHTime(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty time")
	}
	var total int64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("invalid time %q", s)
		}
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time %q", s)
		}
		mult := int64(1)
		if j < len(s) {
			switch s[j] {
			case 's', 'S':
				j++
			case 'm', 'M':
				mult = 60
				j++
			case 'h', 'H':
				mult = 3600
				j++
			case 'd', 'D':
				mult = 86400
				j++
			case 'w', 'W':
				mult = 7 * 86400
				j++
			default:
				return 0, fmt.Errorf("invalid time %q", s)
			}
		}
		if n > math.MaxInt32/mult || total > math.MaxInt32-n*mult {
			return 0, fmt.Errorf("time %q is too long", s)
		}
		total += n * mult
		i = j
	}
	return total, nil
}
