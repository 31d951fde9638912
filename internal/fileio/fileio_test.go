package fileio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(p, 5)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 4); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
		t.Fatalf("limit 4 on 5 bytes: %v, want ErrTooLarge naming the file", err)
	}
	if _, err := ReadFile(dir, 100); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: %v, want ErrNotRegular", err)
	}
	if _, err := ReadFile("/dev/zero", 1<<20); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Fatalf("/dev/zero: %v, want ErrNotRegular", err)
	}
}

func TestReadFileSparseRefusedBySize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3 << 30); err != nil { // 3 GB declared, nothing on disk
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFile(p, 1<<20); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "3.2 GB") {
		t.Fatalf("sparse 3 GiB file: %v, want ErrTooLarge with its size", err)
	}
}

func TestOpenFIFODoesNotBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, _, err := Open(p, 100); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("FIFO: %v, want ErrNotRegular", err)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := WriteAtomic(p, 0o640, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteAtomic(p, 0o640, func(w io.Writer) error { io.WriteString(w, "partial"); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("failing fill: %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "one" {
		t.Fatalf("after a failed write the file holds %q, want the old %q", b, "one")
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("perm %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("leftover temporary files: %v", ents)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out[1]*") // glob characters are literal
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{"steps.jsonl", "steps.jsonl" + TmpInfix + "123", "checkpoint.gob" + TmpInfix + "9",
		"other.txt" + TmpInfix + "5", "steps.jsonl.bak", "xsteps.jsonl" + TmpInfix + "7"}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "steps.jsonl"+TmpInfix+"dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	left := func() []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	if err := RemoveTemps(dir, "steps.jsonl", "checkpoint.gob"); err != nil {
		t.Fatal(err)
	}
	want := "other.txt.tmp-5 steps.jsonl steps.jsonl.bak steps.jsonl.tmp-dir xsteps.jsonl.tmp-7"
	if got := strings.Join(left(), " "); got != want {
		t.Fatalf("after RemoveTemps(steps.jsonl, checkpoint.gob): %s, want %s", got, want)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	want = "steps.jsonl steps.jsonl.bak steps.jsonl.tmp-dir"
	if got := strings.Join(left(), " "); got != want {
		t.Fatalf("after RemoveTemps(): %s, want %s", got, want)
	}
	if err := RemoveTemps(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	if err := RemoveTemps(filepath.Join(dir, "steps.jsonl")); err == nil {
		t.Fatal("a regular file as dir: no error")
	}
}
