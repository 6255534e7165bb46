package qr

import (
	"strconv"
	"strings"
)

// SVG returns the symbol as a standalone SVG document, moduleSize pixels per
// module (at least 1), with a light quiet zone of QuietZone modules. It has a
// white background rectangle and one black path of the dark modules, drawn
// with shape-rendering="crispEdges" so no anti-aliasing seams appear between
// modules. It uses presentation attributes only, no style element, script or
// external reference, so it can be inlined in a page whose Content Security
// Policy forbids inline styles and scripts.
func (c *Code) SVG(moduleSize int) string {
	moduleSize = max(moduleSize, 1)
	n := strconv.Itoa(c.size + 2*QuietZone)
	px := strconv.Itoa((c.size + 2*QuietZone) * moduleSize)

	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="` + px + `" height="` + px +
		`" viewBox="0 0 ` + n + ` ` + n + `" shape-rendering="crispEdges">`)
	b.WriteString(`<rect width="` + n + `" height="` + n + `" fill="#fff"/>`)
	b.WriteString(`<path fill="#000" d="`)
	// One rectangle per horizontal run of dark modules, in viewBox units of
	// one module.
	for y := range c.size {
		for x := 0; x < c.size; {
			if !c.Dark(x, y) {
				x++
				continue
			}
			run := 1
			for c.Dark(x+run, y) {
				run++
			}
			b.WriteString("M" + strconv.Itoa(x+QuietZone) + " " + strconv.Itoa(y+QuietZone) +
				"h" + strconv.Itoa(run) + "v1h-" + strconv.Itoa(run) + "z")
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}
