package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterrupt sends Ctrl-C (SIGINT) to a build while a diffusion stage
// runs: kiln stops within a few seconds, exits 130, says how to continue,
// and the next build completes from where it stopped.
func TestInterrupt(t *testing.T) {
	lib := ortLibrary(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml": "version: 1\nmodels: {exemplar: builtin:exemplar}\n",
		"a.kiln.yaml": `version: 1
assets:
  - {id: tex/stone, kind: tileable, prompt: stone, size: 256}
`,
	})
	cmd := exec.Command(kilnBin, "build", "--ort-lib", lib, dir)
	var stderr bytes.Buffer
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the diffusion stage reports a step, then interrupt.
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "tex/stone:generate: step") {
			break
		}
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 130 || !strings.Contains(stderr.String(), "kiln: interrupted; finished stages are cached, run kiln build again to continue") {
		t.Fatalf("exit %d after SIGINT, stderr:\n%s", code, stderr.String())
	}
	t.Logf("stopped %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "out/tex/stone.png")); !os.IsNotExist(err) {
		t.Fatalf("an interrupted stage published its output: %v", err)
	}
	if r := kiln(t, dir, "build", "-q", "--ort-lib", lib, dir); r.code != 0 {
		t.Fatalf("build after the interrupt: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/tex/stone.png")); err != nil {
		t.Fatal(err)
	}
}
