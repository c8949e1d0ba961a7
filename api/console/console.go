// Package console holds the web console's built assets (dist/, built from
// console/ at the repository's root by `npm run build`), embedded so the
// binary serves the console with no Node at run time.
package console

import "embed"

// Dist is the built console: index.html, the hashed files under assets/,
// and the files of console/public.
//
//go:embed all:dist
var Dist embed.FS
