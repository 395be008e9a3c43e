// Command gen writes kiln's small test model folders, one per flavour, so
// tasks and manual runs can use them without multi-gigabyte downloads.
//
// Usage:
//
//	go run ./models/testmodels/gen [-vocab DIR] [-flavour NAME] [-seed N] OUTDIR
//
// With -vocab (a folder holding CLIP's vocab.json and merges.txt) the
// tokenizers use the real vocabulary; otherwise a tiny generated one.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-dev/kiln/models/testmodels"
)

func main() {
	vocab := flag.String("vocab", "", "folder with CLIP vocab.json and merges.txt (default: tiny generated vocabulary)")
	flavour := flag.String("flavour", "", "write only this flavour (default: all)")
	seed := flag.Uint64("seed", 1, "weights seed")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: gen [flags] OUTDIR\n\nWrites one model folder per flavour into OUTDIR/<flavour>.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	out := flag.Arg(0)
	opts := testmodels.Options{VocabDir: *vocab, Seed: *seed}
	flavours := testmodels.Flavours()
	if *flavour != "" {
		f, err := testmodels.ParseFlavour(*flavour)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(2)
		}
		flavours = []testmodels.Flavour{f}
	}
	for _, f := range flavours {
		dir := filepath.Join(out, string(f))
		if err := testmodels.Write(dir, f, opts); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Println(dir)
	}
}
