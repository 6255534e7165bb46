package qr

// Reed–Solomon codes over GF(256) with the QR code's field polynomial
// x⁸+x⁴+x³+x²+1 (0x11D) and generator roots α⁰ … α^(n-1), α = 2.

var gfExp, gfLog = gfTables()

func gfTables() (exp [512]byte, log [256]byte) {
	x := 1
	for i := range 255 {
		exp[i] = byte(x)
		log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11D
		}
	}
	for i := 255; i < len(exp); i++ {
		exp[i] = exp[i-255] // so gfMul needs no modulo
	}
	return exp, log
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// rsGenerator returns the coefficients of (x-α⁰)(x-α¹)…(x-α^(n-1)), highest
// degree first, without the leading 1.
func rsGenerator(n int) []byte {
	g := []byte{1}
	for i := range n {
		next := make([]byte, len(g)+1)
		for j, c := range g {
			next[j] ^= c
			next[j+1] ^= gfMul(c, gfExp[i])
		}
		g = next
	}
	return g[1:]
}

// rsRemainder returns the error correction codewords of data: the remainder
// of data(x)·xⁿ divided by the generator.
func rsRemainder(data, gen []byte) []byte {
	rem := make([]byte, len(gen))
	for _, d := range data {
		f := d ^ rem[0]
		copy(rem, rem[1:])
		rem[len(rem)-1] = 0
		for j, g := range gen {
			rem[j] ^= gfMul(g, f)
		}
	}
	return rem
}
