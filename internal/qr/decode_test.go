package qr

// A small QR code decoder, written from the standard independently of the
// encoder where it can be (its own field arithmetic, function pattern map,
// alignment table, mask formulas and bit reader), so the two do not share
// mistakes. It reads a perfect module grid; it does not locate a symbol in an
// image.

import (
	"errors"
	"fmt"
)

// grid is a module matrix, [row][column], true for dark.
type grid [][]bool

func gridOf(c *Code) grid {
	g := make(grid, c.Size())
	for y := range g {
		g[y] = make([]bool, c.Size())
		for x := range g[y] {
			g[y][x] = c.Dark(x, y)
		}
	}
	return g
}

type decoded struct {
	version int
	level   Level
	mask    int
	data    []byte
}

// specAlignment is table E.1 of ISO/IEC 18004: alignment pattern centre
// coordinates by version.
var specAlignment = [41][]int{
	2: {6, 18}, 3: {6, 22}, 4: {6, 26}, 5: {6, 30}, 6: {6, 34},
	7: {6, 22, 38}, 8: {6, 24, 42}, 9: {6, 26, 46}, 10: {6, 28, 50},
	11: {6, 30, 54}, 12: {6, 32, 58}, 13: {6, 34, 62},
	14: {6, 26, 46, 66}, 15: {6, 26, 48, 70}, 16: {6, 26, 50, 74}, 17: {6, 30, 54, 78},
	18: {6, 30, 56, 82}, 19: {6, 30, 58, 86}, 20: {6, 34, 62, 90},
	21: {6, 28, 50, 72, 94}, 22: {6, 26, 50, 74, 98}, 23: {6, 30, 54, 78, 102},
	24: {6, 28, 54, 80, 106}, 25: {6, 32, 58, 84, 110}, 26: {6, 30, 58, 86, 114},
	27: {6, 34, 62, 90, 118},
	28: {6, 26, 50, 74, 98, 122}, 29: {6, 30, 54, 78, 102, 126}, 30: {6, 26, 52, 78, 104, 130},
	31: {6, 30, 56, 82, 108, 134}, 32: {6, 34, 60, 86, 112, 138}, 33: {6, 30, 58, 86, 114, 142},
	34: {6, 34, 62, 90, 118, 146},
	35: {6, 30, 54, 78, 102, 126, 150}, 36: {6, 24, 50, 76, 102, 128, 154},
	37: {6, 28, 54, 80, 106, 132, 158}, 38: {6, 32, 58, 84, 110, 136, 162},
	39: {6, 26, 54, 82, 110, 138, 166}, 40: {6, 30, 58, 86, 114, 142, 170},
}

// formatPos1 and formatPos2 give (row, column) of format bits 14 down to 0
// in the two copies (figure 25).
func formatPos1() [15][2]int {
	return [15][2]int{{8, 0}, {8, 1}, {8, 2}, {8, 3}, {8, 4}, {8, 5}, {8, 7}, {8, 8}, {7, 8}, {5, 8}, {4, 8}, {3, 8}, {2, 8}, {1, 8}, {0, 8}}
}

func formatPos2(size int) [15][2]int {
	var p [15][2]int
	for k := range 7 { // bits 14..8: column 8, bottom row upwards
		p[k] = [2]int{size - 1 - k, 8}
	}
	for k := 7; k < 15; k++ { // bits 7..0: row 8, left to right
		p[k] = [2]int{8, size - 8 + (k - 7)}
	}
	return p
}

// bchCode returns data followed by the remainder of data·x^k divided by
// gen, computed bit by bit.
func bchCode(data, k, gen int) int {
	genDeg := k
	rem := data << k
	for bit := 31; bit >= genDeg; bit-- {
		if rem>>bit&1 == 1 {
			rem ^= gen << (bit - genDeg)
		}
	}
	return data<<k | rem
}

func hamming(a, b int) int {
	n := 0
	for x := a ^ b; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// nearest returns the candidate closest to either read value, if within
// maxDist.
func nearest(reads []int, candidates map[int]int, maxDist int) (int, bool) {
	best, bestD := 0, maxDist+1
	for word, value := range candidates {
		for _, r := range reads {
			if d := hamming(word, r); d < bestD {
				best, bestD = value, d
			}
		}
	}
	return best, bestD <= maxDist
}

// functionMap marks the modules that carry no data.
func functionMap(version int) grid {
	size := 17 + 4*version
	f := make(grid, size)
	for i := range f {
		f[i] = make([]bool, size)
	}
	fill := func(r0, c0, h, w int) {
		for r := r0; r < r0+h; r++ {
			for c := c0; c < c0+w; c++ {
				f[r][c] = true
			}
		}
	}
	fill(0, 0, 9, 9)      // finder, separator, format bits
	fill(0, size-8, 9, 8) // top-right finder, separator, format bits
	fill(size-8, 0, 8, 9) // bottom-left finder, separator, format bits, dark module
	fill(6, 0, 1, size)   // timing
	fill(0, 6, size, 1)
	a := specAlignment[version]
	for _, r := range a {
		for _, c := range a {
			last := a[len(a)-1]
			if r == 6 && c == 6 || r == 6 && c == last || r == last && c == 6 {
				continue // where the finder patterns are
			}
			fill(r-2, c-2, 5, 5)
		}
	}
	if version >= 7 {
		fill(0, size-11, 6, 3)
		fill(size-11, 0, 3, 6)
	}
	return f
}

// specMask is table 10 of the standard, i the row and j the column.
func specMask(mask, i, j int) bool {
	switch mask {
	case 0b000:
		return (i+j)%2 == 0
	case 0b001:
		return i%2 == 0
	case 0b010:
		return j%3 == 0
	case 0b011:
		return (i+j)%3 == 0
	case 0b100:
		return ((i/2)+(j/3))%2 == 0
	case 0b101:
		return (i*j)%2+(i*j)%3 == 0
	case 0b110:
		return ((i*j)%2+(i*j)%3)%2 == 0
	case 0b111:
		return ((i+j)%2+(i*j)%3)%2 == 0
	}
	panic("mask")
}

// readFormat returns the level and mask from the format information.
func readFormat(g grid) (Level, int, error) {
	size := len(g)
	words := map[int]int{}
	for d := range 32 {
		words[bchCode(d, 10, 0x537)^0x5412] = d
	}
	var reads []int
	for _, pos := range [][15][2]int{formatPos1(), formatPos2(size)} {
		v := 0
		for _, p := range pos {
			v <<= 1
			if g[p[0]][p[1]] {
				v |= 1
			}
		}
		reads = append(reads, v)
	}
	d, ok := nearest(reads, words, 3)
	if !ok {
		return 0, 0, fmt.Errorf("format information %015b / %015b unreadable", reads[0], reads[1])
	}
	level := map[int]Level{0b01: L, 0b00: M, 0b11: Q, 0b10: H}[d>>3]
	return level, d & 7, nil
}

// readVersion returns the version from the version information blocks.
func readVersion(g grid) (int, error) {
	size := len(g)
	words := map[int]int{}
	for v := 7; v <= 40; v++ {
		words[bchCode(v, 12, 0x1F25)] = v
	}
	var upper, lower int
	for i := 17; i >= 0; i-- { // bit i: upper right block row i/3, column size-11+i%3; mirrored bottom left
		upper <<= 1
		lower <<= 1
		if g[i/3][size-11+i%3] {
			upper |= 1
		}
		if g[size-11+i%3][i/3] {
			lower |= 1
		}
	}
	v, ok := nearest([]int{upper, lower}, words, 3)
	if !ok {
		return 0, fmt.Errorf("version information %018b / %018b unreadable", upper, lower)
	}
	return v, nil
}

// readBits reads the data modules, unmasked, in placement order, with their
// (row, column).
func readBits(g grid, version, mask int) ([]bool, [][2]int) {
	f := functionMap(version)
	size := len(g)
	var bits []bool
	var where [][2]int
	up := true
	for col := size - 1; col > 0; col -= 2 {
		if col == 6 {
			col = 5 // the vertical timing pattern shifts the columns left
		}
		for k := range size {
			row := k
			if up {
				row = size - 1 - k
			}
			for _, c := range []int{col, col - 1} {
				if !f[row][c] {
					bits = append(bits, g[row][c] != specMask(mask, row, c))
					where = append(where, [2]int{row, c})
				}
			}
		}
		up = !up
	}
	return bits, where
}

func decode(g grid) (decoded, error) {
	size := len(g)
	if size < 21 || size > 177 || (size-17)%4 != 0 {
		return decoded{}, fmt.Errorf("size %d is not a QR code size", size)
	}
	version := (size - 17) / 4
	if version >= 7 {
		v, err := readVersion(g)
		if err != nil {
			return decoded{}, err
		}
		if v != version {
			return decoded{}, fmt.Errorf("version information says %d, size says %d", v, version)
		}
	}
	level, mask, err := readFormat(g)
	if err != nil {
		return decoded{}, err
	}
	bits, _ := readBits(g, version, mask)
	raw := make([]byte, len(bits)/8)
	for i := range raw {
		for k := range 8 {
			if bits[8*i+k] {
				raw[i] |= 0x80 >> k
			}
		}
	}
	data, err := deinterleave(raw, version, level)
	if err != nil {
		return decoded{}, err
	}
	payload, err := parseSegment(data, version)
	if err != nil {
		return decoded{}, err
	}
	return decoded{version: version, level: level, mask: mask, data: payload}, nil
}

// deinterleave splits the codewords into blocks, corrects each and returns
// the data codewords in order.
func deinterleave(raw []byte, version int, level Level) ([]byte, error) {
	nb, ecLen := eccBlocks[level][version], eccPerBlock[level][version]
	long := len(raw) % nb            // blocks with one more data codeword
	shortData := len(raw)/nb - ecLen // data codewords in the others
	blocks := make([][]byte, nb)
	k := 0
	for j := 0; j <= shortData; j++ {
		for b := range nb {
			if j < shortData || b >= nb-long {
				blocks[b] = append(blocks[b], raw[k])
				k++
			}
		}
	}
	for range ecLen {
		for b := range nb {
			blocks[b] = append(blocks[b], raw[k])
			k++
		}
	}
	if k != len(raw) {
		return nil, fmt.Errorf("used %d of %d codewords", k, len(raw))
	}
	var data []byte
	for b, blk := range blocks {
		if err := rsCorrect(blk, ecLen); err != nil {
			return nil, fmt.Errorf("block %d: %w", b, err)
		}
		data = append(data, blk[:len(blk)-ecLen]...)
	}
	return data, nil
}

// parseSegment reads one byte-mode segment and checks that the rest is the
// terminator, zero bits and the pad bytes.
func parseSegment(data []byte, version int) ([]byte, error) {
	pos := 0
	read := func(n int) int {
		v := 0
		for range n {
			v <<= 1
			if pos < len(data)*8 && data[pos/8]>>(7-pos%8)&1 == 1 {
				v |= 1
			}
			pos++
		}
		return v
	}
	if m := read(4); m != 0b0100 {
		return nil, fmt.Errorf("mode %04b, want byte mode", m)
	}
	countBits := 8
	if version >= 10 {
		countBits = 16
	}
	n := read(countBits)
	if pos+8*n > len(data)*8 {
		return nil, fmt.Errorf("segment of %d bytes overruns %d codewords", n, len(data))
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(read(8))
	}
	if read(min(4, len(data)*8-pos)) != 0 {
		return nil, errors.New("non-zero terminator")
	}
	for pos%8 != 0 {
		if read(1) != 0 {
			return nil, errors.New("non-zero filler bits")
		}
	}
	for i, pad := pos/8, byte(0xEC); i < len(data); i, pad = i+1, pad^0xEC^0x11 {
		if data[i] != pad {
			return nil, fmt.Errorf("pad byte %d is %#x, want %#x", i, data[i], pad)
		}
	}
	return out, nil
}

// Field arithmetic in GF(256) mod x⁸+x⁴+x³+x²+1, bit by bit.

func tMul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		carry := a & 0x80
		a <<= 1
		if carry != 0 {
			a ^= 0x1D
		}
		b >>= 1
	}
	return p
}

func tPow(a byte, n int) byte {
	n %= 255
	if n < 0 {
		n += 255
	}
	r := byte(1)
	for range n {
		r = tMul(r, a)
	}
	return r
}

func tInv(a byte) byte { return tPow(a, 254) }

// polyEval evaluates a polynomial given lowest degree first.
func polyEval(p []byte, x byte) byte {
	var r byte
	for i := len(p) - 1; i >= 0; i-- {
		r = tMul(r, x) ^ p[i]
	}
	return r
}

// rsCorrect corrects up to ecLen/2 erroneous codewords of block in place
// (Berlekamp–Massey, Chien search, Forney), or fails.
func rsCorrect(block []byte, ecLen int) error {
	n := len(block)
	// r(x) with block[0] the coefficient of x^(n-1); syndromes S_j = r(α^j).
	synd := make([]byte, ecLen)
	bad := false
	for j := range synd {
		var s byte
		x := tPow(2, j)
		for _, c := range block {
			s = tMul(s, x) ^ c
		}
		synd[j] = s
		bad = bad || s != 0
	}
	if !bad {
		return nil
	}
	// Berlekamp–Massey: the error locator Λ, lowest degree first.
	lambda, prev := []byte{1}, []byte{1}
	errs, shift, lastD := 0, 1, byte(1)
	for k := range ecLen {
		d := synd[k]
		for i := 1; i <= errs && i < len(lambda); i++ {
			d ^= tMul(lambda[i], synd[k-i])
		}
		if d == 0 {
			shift++
			continue
		}
		coef := tMul(d, tInv(lastD))
		next := append([]byte(nil), lambda...)
		for len(next) < len(prev)+shift {
			next = append(next, 0)
		}
		for i, p := range prev {
			next[i+shift] ^= tMul(coef, p)
		}
		if 2*errs <= k {
			prev, errs, lastD, shift = lambda, k+1-errs, d, 1
		} else {
			shift++
		}
		lambda = next
	}
	if 2*errs > ecLen {
		return errors.New("too many errors")
	}
	// Chien search: an error at degree e makes Λ(α^-e) zero.
	var degrees []int
	for e := range n {
		if polyEval(lambda, tPow(2, -e)) == 0 {
			degrees = append(degrees, e)
		}
	}
	if len(degrees) != errs {
		return fmt.Errorf("error locator has %d roots in range, want %d", len(degrees), errs)
	}
	// Forney, first consecutive root α⁰: e = X·Ω(X⁻¹)/Λ'(X⁻¹).
	omega := make([]byte, ecLen)
	for i := range omega {
		for j := 0; j <= i && j < len(lambda); j++ {
			omega[i] ^= tMul(synd[i-j], lambda[j])
		}
	}
	deriv := make([]byte, len(lambda))
	for i := 1; i < len(lambda); i += 2 {
		deriv[i-1] = lambda[i]
	}
	for _, e := range degrees {
		x := tPow(2, e)
		xInv := tInv(x)
		den := polyEval(deriv, xInv)
		if den == 0 {
			return errors.New("Forney: zero derivative")
		}
		block[n-1-e] ^= tMul(tMul(x, polyEval(omega, xInv)), tInv(den))
	}
	// Check the correction.
	for j := range ecLen {
		var s byte
		x := tPow(2, j)
		for _, c := range block {
			s = tMul(s, x) ^ c
		}
		if s != 0 {
			return errors.New("correction failed")
		}
	}
	return nil
}
