// Package aerofnts ships aerofn.d.ts, the TypeScript declarations of the
// host API of JavaScript and TypeScript functions, so that `aerofn new
// --lang ts` can write it into a new project.
package aerofnts

import _ "embed"

// DTS is aerofn.d.ts.
//
//go:embed aerofn.d.ts
var DTS string
