package qr

// matrix is a symbol under construction. x is the column, y the row, (0, 0)
// the top-left module.
type matrix struct {
	size int
	dark []bool
	fn   []bool // function modules: patterns, format and version information
}

func (m *matrix) set(x, y int, dark bool) {
	m.dark[y*m.size+x] = dark
	m.fn[y*m.size+x] = true
}

// newMatrix draws a version's function patterns and version information, and
// reserves the format information areas.
func newMatrix(version int) *matrix {
	size := sizeOf(version)
	m := &matrix{size: size, dark: make([]bool, size*size), fn: make([]bool, size*size)}

	for i := range size { // timing patterns; the finders overwrite their ends
		m.set(6, i, i%2 == 0)
		m.set(i, 6, i%2 == 0)
	}
	m.drawFinder(3, 3)
	m.drawFinder(size-4, 3)
	m.drawFinder(3, size-4)

	pos := alignmentPositions(version)
	for i, x := range pos {
		for j, y := range pos {
			last := len(pos) - 1
			if i == 0 && j == 0 || i == 0 && j == last || i == last && j == 0 {
				continue // on a finder pattern
			}
			for dy := -2; dy <= 2; dy++ {
				for dx := -2; dx <= 2; dx++ {
					m.set(x+dx, y+dy, max(abs(dx), abs(dy)) != 1)
				}
			}
		}
	}

	m.drawFormat(0, 0) // reserves the area; drawn for real once the mask is chosen
	if version >= 7 {
		bits := versionBits(version)
		for i := range 18 {
			a, b := size-11+i%3, i/3
			m.set(a, b, bits>>i&1 != 0)
			m.set(b, a, bits>>i&1 != 0)
		}
	}
	return m
}

// drawFinder draws a finder pattern centred on (cx, cy) with its light
// separator, clipped to the symbol.
func (m *matrix) drawFinder(cx, cy int) {
	for dy := -4; dy <= 4; dy++ {
		for dx := -4; dx <= 4; dx++ {
			x, y := cx+dx, cy+dy
			if x < 0 || y < 0 || x >= m.size || y >= m.size {
				continue
			}
			d := max(abs(dx), abs(dy))
			m.set(x, y, d != 2 && d != 4)
		}
	}
}

// drawFormat draws both copies of the format information, and the dark
// module beside the bottom-left finder. Bit 14 is the most significant.
func (m *matrix) drawFormat(level Level, mask int) {
	bits := formatBits(level, mask)
	bit := func(i int) bool { return bits>>i&1 != 0 }
	// Around the top-left finder: bits 0–7 down column 8 (skipping the
	// timing row), bits 8–14 leftwards along row 8 (skipping the timing
	// column).
	for i := range 6 {
		m.set(8, i, bit(i))
	}
	m.set(8, 7, bit(6))
	m.set(8, 8, bit(7))
	m.set(7, 8, bit(8))
	for i := 9; i < 15; i++ {
		m.set(14-i, 8, bit(i))
	}
	// Split between the other two finders: bits 0–7 along row 8 from the
	// right edge, bits 8–14 down column 8 to the bottom edge.
	s := m.size
	for i := range 8 {
		m.set(s-1-i, 8, bit(i))
	}
	for i := 8; i < 15; i++ {
		m.set(8, s-15+i, bit(i))
	}
	m.set(8, s-8, true)
}

// placeCodewords fills the non-function modules with the codewords' bits,
// most significant first, in two-module-wide columns from the right,
// alternately upwards and downwards, stepping over the vertical timing
// pattern. Remainder modules stay light.
func (m *matrix) placeCodewords(data []byte) {
	i := 0
	for right := m.size - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		upward := (right+1)&2 == 0
		for vert := range m.size {
			y := vert
			if upward {
				y = m.size - 1 - vert
			}
			for x := right; x >= right-1; x-- {
				if m.fn[y*m.size+x] || i >= len(data)*8 {
					continue
				}
				m.dark[y*m.size+x] = data[i/8]>>(7-i%8)&1 != 0
				i++
			}
		}
	}
}

// applyMask XORs the data mask pattern onto the non-function modules; doing
// it twice undoes it.
func (m *matrix) applyMask(mask int) {
	for y := range m.size {
		for x := range m.size {
			k := y*m.size + x
			if !m.fn[k] && maskBit(mask, x, y) {
				m.dark[k] = !m.dark[k]
			}
		}
	}
}

// maskBit reports whether mask pattern mask inverts the module in column x,
// row y (table 10 of the standard).
func maskBit(mask, x, y int) bool {
	switch mask {
	case 0:
		return (x+y)%2 == 0
	case 1:
		return y%2 == 0
	case 2:
		return x%3 == 0
	case 3:
		return (x+y)%3 == 0
	case 4:
		return (x/3+y/2)%2 == 0
	case 5:
		return x*y%2+x*y%3 == 0
	case 6:
		return (x*y%2+x*y%3)%2 == 0
	default:
		return ((x+y)%2+x*y%3)%2 == 0
	}
}

// Penalty weights of section 7.8.3.1.
const (
	penaltyRun     = 3  // N1: a run of 5 same-colour modules, +1 per extra module
	penaltyBlock   = 3  // N2: a 2×2 block of one colour
	penaltyFinder  = 40 // N3: a 1:1:3:1:1 finder-like pattern beside 4 light modules
	penaltyBalance = 10 // N4: each 5% step of dark modules away from 50%
)

// penalty scores the symbol by the standard's four rules; the mask with the
// lowest score is used.
func (m *matrix) penalty() int {
	s := m.size
	at := func(x, y int) bool { return m.dark[y*s+x] }
	score := 0
	line := make([]bool, s)
	for _, vertical := range []bool{false, true} {
		for a := range s {
			for b := range s {
				if vertical {
					line[b] = at(a, b)
				} else {
					line[b] = at(b, a)
				}
			}
			score += linePenalty(line)
		}
	}
	dark := 0
	for y := range s {
		for x := range s {
			if at(x, y) {
				dark++
			}
			if x+1 < s && y+1 < s {
				c := at(x, y)
				if at(x+1, y) == c && at(x, y+1) == c && at(x+1, y+1) == c {
					score += penaltyBlock
				}
			}
		}
	}
	total := s * s
	k := (abs(dark*20-total*10)+total-1)/total - 1
	return score + k*penaltyBalance
}

// linePenalty scores one row or column for rules 1 and 3. The quiet zone
// counts as light, as a reader sees it.
func linePenalty(line []bool) int {
	score := 0
	run := 0
	for i, c := range line {
		if i > 0 && c == line[i-1] {
			run++
		} else {
			run = 1
		}
		if run == 5 {
			score += penaltyRun
		} else if run > 5 {
			score++
		}
	}
	// Rule 3: dark-light-dark×3-light-dark (1:1:3:1:1), with four light
	// modules before it or after it; each side counts once.
	light := func(from, to int) bool {
		for k := max(from, 0); k < min(to, len(line)); k++ {
			if line[k] {
				return false
			}
		}
		return true
	}
	for i := 0; i+7 <= len(line); i++ {
		if !line[i] || line[i+1] || !line[i+2] || !line[i+3] || !line[i+4] || line[i+5] || !line[i+6] {
			continue
		}
		if light(i-4, i) {
			score += penaltyFinder
		}
		if light(i+7, i+11) {
			score += penaltyFinder
		}
	}
	return score
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
