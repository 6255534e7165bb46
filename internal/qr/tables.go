package qr

// Tables of ISO/IEC 18004:2015, indexed by level (L, M, Q, H) then version
// (index 0 unused).

// eccPerBlock is the number of error correction codewords in each block
// (table 9 of the standard).
var eccPerBlock = [4][41]int{
	{-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
	{-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28},
	{-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
	{-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
}

// eccBlocks is the number of error correction blocks (table 9). When the
// codewords do not divide evenly, the last blocks hold one more data
// codeword than the first.
var eccBlocks = [4][41]int{
	{-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25},
	{-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49},
	{-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68},
	{-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81},
}

// rawCodewords is the number of 8-bit codewords a version holds: its modules
// less the function patterns, format and version information, divided by 8
// (the 0 to 7 remainder bits are left over).
func rawCodewords(version int) int {
	size := sizeOf(version)
	n := size * size
	n -= 3 * 64          // finder patterns and their separators
	n -= 2 * (size - 16) // timing patterns between the separators
	n -= 2*15 + 1        // format information, twice, and the dark module
	if na := len(alignmentPositions(version)); na > 0 {
		n -= 25 * (na*na - 3) // alignment patterns, less the three on finders
		n += 2 * 5 * (na - 2) // those that cross a timing pattern overlap it
	}
	if version >= 7 {
		n -= 2 * 18 // version information
	}
	return n / 8
}

// dataCodewords is the number of data codewords of a version and level.
func dataCodewords(version int, level Level) int {
	return rawCodewords(version) - eccPerBlock[level][version]*eccBlocks[level][version]
}

// alignmentPositions returns the row (and column) coordinates of the
// alignment pattern centres (annex E): from 6 to size-7, as evenly spaced as
// even steps allow, the first gap taking up the slack. Version 32 is the one
// exception to the rule.
func alignmentPositions(version int) []int {
	if version == 1 {
		return nil
	}
	n := version/7 + 2
	step := 26
	if version != 32 {
		step = (version*4 + n*2 + 1) / (n*2 - 2) * 2
	}
	pos := make([]int, n)
	pos[0] = 6
	for i, p := n-1, sizeOf(version)-7; i >= 1; i, p = i-1, p-step {
		pos[i] = p
	}
	return pos
}

// sizeOf is the width of a version's symbol in modules.
func sizeOf(version int) int { return 17 + 4*version }

// charCountBits is the width of a byte-mode segment's length field.
func charCountBits(version int) int {
	if version <= 9 {
		return 8
	}
	return 16
}

// formatBits returns the 15-bit format information for a level and mask:
// 5 data bits, 10 BCH(15,5) bits with generator 0x537, XORed with 0x5412 so
// it is never all light.
func formatBits(level Level, mask int) int {
	data := [4]int{1, 0, 3, 2}[level]<<3 | mask
	rem := data << 10
	for i := 14; i >= 10; i-- {
		if rem&(1<<i) != 0 {
			rem ^= 0x537 << (i - 10)
		}
	}
	return (data<<10 | rem) ^ 0x5412
}

// versionBits returns the 18-bit version information (versions 7 and up):
// 6 data bits and 12 BCH(18,6) bits with generator 0x1F25.
func versionBits(version int) int {
	rem := version << 12
	for i := 17; i >= 12; i-- {
		if rem&(1<<i) != 0 {
			rem ^= 0x1F25 << (i - 12)
		}
	}
	return version<<12 | rem
}
