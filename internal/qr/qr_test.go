package qr

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestFormatBits(t *testing.T) {
	// The 32 format information strings of table C.1 (after the 0x5412 XOR),
	// by level then mask.
	want := map[Level][8]string{
		L: {"111011111000100", "111001011110011", "111110110101010", "111100010011101", "110011000101111", "110001100011000", "110110001000001", "110100101110110"},
		M: {"101010000010010", "101000100100101", "101111001111100", "101101101001011", "100010111111001", "100000011001110", "100111110010111", "100101010100000"},
		Q: {"011010101011111", "011000001101000", "011111100110001", "011101000000110", "010010010110100", "010000110000011", "010111011011010", "010101111101101"},
		H: {"001011010001001", "001001110111110", "001110011100111", "001100111010000", "000011101100010", "000001001010101", "000110100001100", "000100000111011"},
	}
	var all []int
	for level, masks := range want {
		for mask, w := range masks {
			got := fmt.Sprintf("%015b", formatBits(level, mask))
			if got != w {
				t.Errorf("format bits %s mask %d = %s, want %s", level, mask, got, w)
			}
			all = append(all, formatBits(level, mask))
		}
	}
	// BCH(15,5) has minimum distance 7, which is what lets readers correct 3
	// bit errors.
	for i := range all {
		for j := range i {
			if d := hamming(all[i], all[j]); d < 7 {
				t.Errorf("format words %015b and %015b differ in %d bits", all[i], all[j], d)
			}
		}
	}
}

func TestVersionBits(t *testing.T) {
	// Table D.1.
	want := [41]int{7: 0x07C94, 0x085BC, 0x09A99, 0x0A4D3, 0x0BBF6, 0x0C762, 0x0D847, 0x0E60D, 0x0F928,
		0x10B78, 0x1145D, 0x12A17, 0x13532, 0x149A6, 0x15683, 0x168C9, 0x177EC, 0x18EC4, 0x191E1,
		0x1AFAB, 0x1B08E, 0x1CC1A, 0x1D33F, 0x1ED75, 0x1F250, 0x209D5, 0x216F0, 0x228BA, 0x2379F,
		0x24B0B, 0x2542E, 0x26A64, 0x27541, 0x28C69}
	for v := 7; v <= 40; v++ {
		if got := versionBits(v); got != want[v] {
			t.Errorf("version bits %d = %#05x, want %#05x", v, got, want[v])
		}
		if got := bchCode(v, 12, 0x1F25); got != want[v] {
			t.Errorf("test decoder's BCH of version %d = %#05x, want %#05x", v, got, want[v])
		}
	}
}

func TestAlignmentPositions(t *testing.T) {
	for v := 1; v <= MaxVersion; v++ {
		got := alignmentPositions(v)
		if fmt.Sprint(got) != fmt.Sprint(specAlignment[v]) && !(v == 1 && len(got) == 0) {
			t.Errorf("version %d: alignment at %v, want %v", v, got, specAlignment[v])
		}
	}
}

func TestCapacity(t *testing.T) {
	// Table 7, byte mode, versions 1–10 and 40.
	want := map[Level][]int{
		L: {17, 32, 53, 78, 106, 134, 154, 192, 230, 271},
		M: {14, 26, 42, 62, 84, 106, 122, 152, 180, 213},
		Q: {11, 20, 32, 46, 60, 74, 86, 108, 130, 151},
		H: {7, 14, 24, 34, 44, 58, 64, 84, 98, 119},
	}
	want40 := map[Level]int{L: 2953, M: 2331, Q: 1663, H: 1273}
	for level, caps := range want {
		for i, c := range caps {
			if got := Capacity(i+1, level); got != c {
				t.Errorf("Capacity(%d, %s) = %d, want %d", i+1, level, got, c)
			}
		}
		if got := Capacity(40, level); got != want40[level] {
			t.Errorf("Capacity(40, %s) = %d, want %d", level, got, want40[level])
		}
	}
	if Capacity(0, M) != 0 || Capacity(41, M) != 0 || Capacity(1, Level(4)) != 0 {
		t.Error("Capacity of an invalid version or level is not 0")
	}

	// Total codewords (table 1), and the remainder bits left over, counted
	// by the test decoder's own map of the function patterns.
	total := [41]int{1: 26, 44, 70, 100, 134, 172, 196, 242, 292, 346, 40: 3706}
	for v := 1; v <= MaxVersion; v++ {
		if total[v] != 0 && rawCodewords(v) != total[v] {
			t.Errorf("rawCodewords(%d) = %d, want %d", v, rawCodewords(v), total[v])
		}
		remainder := 0
		switch {
		case v >= 2 && v <= 6:
			remainder = 7
		case v >= 14 && v <= 20, v >= 28 && v <= 34:
			remainder = 3
		case v >= 21 && v <= 27:
			remainder = 4
		}
		size := sizeOf(v)
		g := make(grid, size)
		for i := range g {
			g[i] = make([]bool, size)
		}
		bits, _ := readBits(g, v, 0)
		if len(bits) != 8*rawCodewords(v)+remainder {
			t.Errorf("version %d: %d data modules, want %d codewords and %d remainder bits", v, len(bits), rawCodewords(v), remainder)
		}
		// Blocks are at most one codeword apart, and hold data.
		for level := L; level <= H; level++ {
			nb := eccBlocks[level][v]
			if short := rawCodewords(v)/nb - eccPerBlock[level][v]; short < 1 {
				t.Errorf("version %d-%s: %d data codewords per block", v, level, short)
			}
		}
	}
}

// payload returns n random bytes.
func payload(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRoundTripAllVersions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for level := L; level <= H; level++ {
		for v := 1; v <= MaxVersion; v++ {
			if testing.Short() && v > 10 && v%10 != 0 {
				continue
			}
			// The fullest and the emptiest payload that need this version.
			for _, n := range []int{Capacity(v, level), Capacity(v-1, level) + 1} {
				data := payload(r, n)
				c, err := Encode(data, level)
				if err != nil {
					t.Fatalf("%d bytes at %s: %v", n, level, err)
				}
				if c.Version != v || c.Level != level || c.Size() != sizeOf(v) {
					t.Fatalf("%d bytes at %s: version %d size %d, want version %d", n, level, c.Version, c.Size(), v)
				}
				checkFixedPatterns(t, c)
				got, err := decode(gridOf(c))
				if err != nil {
					t.Fatalf("version %d-%s, %d bytes: decoding: %v", v, level, n, err)
				}
				if got.version != v || got.level != level || got.mask != c.Mask || !bytes.Equal(got.data, data) {
					t.Fatalf("version %d-%s, %d bytes: decoded version %d level %s mask %d, data equal %v",
						v, level, n, got.version, got.level, got.mask, bytes.Equal(got.data, data))
				}
			}
		}
	}
}

func TestRoundTripEveryMask(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := [][]byte{
		nil,
		{0},
		bytes.Repeat([]byte{0}, 100),
		bytes.Repeat([]byte{0xff}, 100),
		[]byte("otpauth://totp/Sonde:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Sonde&algorithm=SHA1&digits=6&period=30"),
		payload(r, 200),
	}
	for _, data := range tests {
		for level := L; level <= H; level++ {
			for mask := range 8 {
				c, err := encode(data, level, mask)
				if err != nil {
					t.Fatal(err)
				}
				got, err := decode(gridOf(c))
				if err != nil {
					t.Fatalf("%d bytes, %s, mask %d: %v", len(data), level, mask, err)
				}
				if got.mask != mask || !bytes.Equal(got.data, data) {
					t.Fatalf("%d bytes, %s, mask %d: decoded mask %d, data %q", len(data), level, mask, got.mask, got.data)
				}
			}
		}
	}
}

func TestMaskChoice(t *testing.T) {
	// Encode picks the mask with the lowest penalty.
	data := []byte("otpauth://totp/Sonde:bob?secret=JBSWY3DPEHPK3PXP&issuer=Sonde")
	c, err := Encode(data, M)
	if err != nil {
		t.Fatal(err)
	}
	score := func(c *Code) int {
		m := &matrix{size: c.size, dark: c.modules}
		return m.penalty()
	}
	best := score(c)
	for mask := range 8 {
		other, _ := encode(data, M, mask)
		if s := score(other); s < best {
			t.Errorf("mask %d scores %d, below the chosen mask %d's %d", mask, s, c.Mask, best)
		}
	}
}

func TestPenaltyRules(t *testing.T) {
	line := func(s string) []bool {
		b := make([]bool, len(s))
		for i := range s {
			b[i] = s[i] == '1'
		}
		return b
	}
	tests := []struct {
		line string
		want int
	}{
		{"1010101010", 0},
		{"1111101010", 3},               // a run of 5
		{"1111111010", 5},               // a run of 7: 3 + 2
		{"0000011111", 6},               // two runs of 5
		{"01011101000001", 40 + 40 + 3}, // finder-like, light after and (with the quiet zone) before; five light are a run
		{"10111010", 40 + 40},           // the quiet zone is light on both sides
		{"1101110101", 0},
	}
	for _, tt := range tests {
		if got := linePenalty(line(tt.line)); got != tt.want {
			t.Errorf("linePenalty(%s) = %d, want %d", tt.line, got, tt.want)
		}
	}
}

func TestErrorCorrection(t *testing.T) {
	// Flip up to half the error correction codewords of every block: the
	// test decoder must still read the data, which it can only if the
	// encoder's Reed–Solomon codewords are right.
	r := rand.New(rand.NewPCG(5, 6))
	for level := L; level <= H; level++ {
		for _, v := range []int{1, 2, 5, 7, 10, 15, 27, 40} {
			data := payload(r, Capacity(v, level))
			c, err := Encode(data, level)
			if err != nil {
				t.Fatal(err)
			}
			g := gridOf(c)
			_, where := readBits(g, v, c.Mask)
			nb, ecLen := eccBlocks[level][v], eccPerBlock[level][v]
			short := rawCodewords(v)/nb - ecLen
			// The first nb·k codewords in placement order are k codewords
			// of each block.
			k := min(ecLen/2, short)
			for i := range nb * k {
				cw := r.IntN(255) + 1
				for bit := range 8 {
					if cw>>bit&1 == 1 {
						p := where[8*i+bit]
						g[p[0]][p[1]] = !g[p[0]][p[1]]
					}
				}
			}
			got, err := decode(g)
			if err != nil {
				t.Fatalf("version %d-%s with %d errors a block: %v", v, level, k, err)
			}
			if !bytes.Equal(got.data, data) {
				t.Fatalf("version %d-%s with %d errors a block: wrong data", v, level, k)
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for level := L; level <= H; level++ {
		n := Capacity(MaxVersion, level)
		if _, err := Encode(make([]byte, n), level); err != nil {
			t.Errorf("%d bytes at %s: %v", n, level, err)
		}
		if _, err := Encode(make([]byte, n+1), level); !errors.Is(err, ErrTooLong) {
			t.Errorf("%d bytes at %s: err = %v, want ErrTooLong", n+1, level, err)
		}
	}
	if _, err := Encode(nil, Level(4)); err == nil {
		t.Error("level 4: no error")
	}
	if _, err := Encode(nil, Level(-1)); err == nil {
		t.Error("level -1: no error")
	}
	if s := Level(7).String(); s != "Level(7)" {
		t.Errorf("Level(7).String() = %q", s)
	}
}

// checkFixedPatterns checks the function patterns against the standard's
// description, independently of how the encoder draws them.
func checkFixedPatterns(t *testing.T, c *Code) {
	t.Helper()
	s := c.Size()
	dark := func(row, col int) bool { return c.Dark(col, row) }
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("version %d-%s: "+format, append([]any{c.Version, c.Level}, args...)...)
	}
	// Finder patterns (7×7: dark ring, light ring, dark 3×3) with their
	// light separators.
	for _, corner := range [][2]int{{0, 0}, {0, s - 7}, {s - 7, 0}} {
		for dr := -1; dr <= 7; dr++ {
			for dc := -1; dc <= 7; dc++ {
				r, col := corner[0]+dr, corner[1]+dc
				if r < 0 || col < 0 || r >= s || col >= s {
					continue
				}
				ring := max(abs(dr-3), abs(dc-3))
				if want := ring == 0 || ring == 1 || ring == 3; dark(r, col) != want {
					fail("finder at %v: module (%d,%d) dark=%v", corner, r, col, !want)
				}
			}
		}
	}
	// Timing patterns.
	for i := 8; i < s-8; i++ {
		if dark(6, i) != (i%2 == 0) || dark(i, 6) != (i%2 == 0) {
			fail("timing pattern wrong at %d", i)
		}
	}
	// Alignment patterns.
	a := specAlignment[c.Version]
	for _, r := range a {
		for _, col := range a {
			last := a[len(a)-1]
			if r == 6 && col == 6 || r == 6 && col == last || r == last && col == 6 {
				continue
			}
			for dr := -2; dr <= 2; dr++ {
				for dc := -2; dc <= 2; dc++ {
					if want := max(abs(dr), abs(dc)) != 1; dark(r+dr, col+dc) != want {
						fail("alignment pattern at (%d,%d) wrong at (%d,%d)", r, col, dr, dc)
					}
				}
			}
		}
	}
	// The dark module.
	if !dark(4*c.Version+9, 8) {
		fail("no dark module")
	}
	// Both copies of the format information.
	wantFormat := formatBits(c.Level, c.Mask)
	for _, pos := range [][15][2]int{formatPos1(), formatPos2(s)} {
		for k, p := range pos {
			if dark(p[0], p[1]) != (wantFormat>>(14-k)&1 == 1) {
				fail("format bit %d at %v wrong", 14-k, p)
			}
		}
	}
	// Both copies of the version information.
	if c.Version >= 7 {
		wantVersion := versionBits(c.Version)
		for i := range 18 {
			bit := wantVersion>>i&1 == 1
			if dark(i/3, s-11+i%3) != bit || dark(s-11+i%3, i/3) != bit {
				fail("version bit %d wrong", i)
			}
		}
	}
}

func TestDarkOutside(t *testing.T) {
	c, err := Encode([]byte("x"), M)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]int{{-1, 0}, {0, -1}, {21, 0}, {0, 21}, {-100, 300}} {
		if c.Dark(p[0], p[1]) {
			t.Errorf("Dark%v outside the symbol", p)
		}
	}
}

var pathCommand = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)

func TestSVG(t *testing.T) {
	c, err := Encode([]byte("otpauth://totp/Sonde:alice?secret=JBSWY3DPEHPK3PXP&issuer=Sonde"), M)
	if err != nil {
		t.Fatal(err)
	}
	for _, ms := range []int{0, 1, 4, 7} {
		svg := c.SVG(ms)
		px := (c.Size() + 2*QuietZone) * max(ms, 1)
		units := c.Size() + 2*QuietZone

		// Well-formed XML with the expected root.
		var root struct {
			XMLName xml.Name
			Width   string `xml:"width,attr"`
			Height  string `xml:"height,attr"`
			ViewBox string `xml:"viewBox,attr"`
			Shape   string `xml:"shape-rendering,attr"`
			Rects   []struct {
				Fill string `xml:"fill,attr"`
			} `xml:"rect"`
			Paths []struct {
				Fill string `xml:"fill,attr"`
				D    string `xml:"d,attr"`
			} `xml:"path"`
		}
		if err := xml.Unmarshal([]byte(svg), &root); err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		if root.XMLName.Space != "http://www.w3.org/2000/svg" || root.XMLName.Local != "svg" ||
			root.Width != strconv.Itoa(px) || root.Height != strconv.Itoa(px) ||
			root.ViewBox != fmt.Sprintf("0 0 %d %d", units, units) || root.Shape != "crispEdges" ||
			len(root.Paths) != 1 || root.Paths[0].Fill != "#000" || len(root.Rects) != 1 || root.Rects[0].Fill != "#fff" {
			t.Fatalf("unexpected SVG root: %+v", root)
		}
		// Nothing a strict CSP or an HTML sanitiser would object to.
		for _, bad := range []string{"<style", "style=", "<script", "href", "url(", "on", "<!", "<?"} {
			if bad == "on" {
				if regexp.MustCompile(`\son\w+=`).MatchString(svg) {
					t.Errorf("SVG has an event handler attribute")
				}
				continue
			}
			if strings.Contains(svg, bad) {
				t.Errorf("SVG contains %q", bad)
			}
		}
		// The path, redrawn, is exactly the dark modules, quiet zone light.
		d := root.Paths[0].D
		if rest := pathCommand.ReplaceAllString(d, ""); rest != "" {
			t.Fatalf("unexpected path commands %q", rest)
		}
		drawn := make([][]bool, units)
		for i := range drawn {
			drawn[i] = make([]bool, units)
		}
		for _, m := range pathCommand.FindAllStringSubmatch(d, -1) {
			x, _ := strconv.Atoi(m[1])
			y, _ := strconv.Atoi(m[2])
			w, _ := strconv.Atoi(m[3])
			if m[4] != m[3] {
				t.Fatalf("unclosed run %q", m[0])
			}
			for i := x; i < x+w; i++ {
				if drawn[y][i] {
					t.Fatalf("module (%d,%d) drawn twice", i, y)
				}
				drawn[y][i] = true
			}
		}
		for y := range units {
			for x := range units {
				if drawn[y][x] != c.Dark(x-QuietZone, y-QuietZone) {
					t.Fatalf("SVG module (%d,%d) dark=%v, symbol says %v", x, y, drawn[y][x], !drawn[y][x])
				}
			}
		}
	}
}
