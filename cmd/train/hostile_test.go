package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/internal/idxtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileCase is one crafted input: the command line that loads it, the
// exit status and what stderr must say (the file, the offset, the problem).
type hostileCase struct {
	name string
	args []string
	code int
	want []string
}

var idxFile, gz = idxtest.Encode, idxtest.Gzip

// gzipBomb returns a 1.0 MB multi-member gzip stream whose decompressed
// content is an IDX header claiming n images of 28×28 followed by all
// n·784 zero pixels (about 1 GB for n = 1.3 M): every claim in it is true.
func gzipBomb(t testing.TB, n int) []byte {
	const block = 1 << 20
	total := n * 784
	var out bytes.Buffer
	out.Write(gz(t, idxFile([]int{n, 28, 28}, make([]byte, block))))
	member := gz(t, make([]byte, block))
	left := total - block
	for ; left >= block; left -= block {
		out.Write(member)
	}
	out.Write(gz(t, make([]byte, left)))
	return out.Bytes()
}

func labels(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 10)
	}
	return b
}

// mnistDir writes an MNIST-layout directory; nil entries get a valid file
// (train 64 images, test 16).
func mnistDir(t testing.TB, root, name string, trainImg, trainLbl, testImg, testLbl []byte) string {
	dir := filepath.Join(root, name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	def := func(b []byte, n int, img bool) []byte {
		if b != nil {
			return b
		}
		if img {
			return idxFile([]int{n, 28, 28}, bytes.Repeat([]byte{7}, n*784))
		}
		return idxFile([]int{n}, labels(n))
	}
	for f, b := range map[string][]byte{
		"train-images-idx3-ubyte": def(trainImg, 64, true), "train-labels-idx1-ubyte": def(trainLbl, 64, false),
		"t10k-images-idx3-ubyte": def(testImg, 16, true), "t10k-labels-idx1-ubyte": def(testLbl, 16, false),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	return dir
}

// cifarDir writes a CIFAR-10 directory of valid files (16 records each)
// and applies edit to it.
func cifarDir(t testing.TB, root, name string, edit func(dir string)) string {
	dir := filepath.Join(root, name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rec := make([]byte, 16*3073)
	for i := 0; i < 16; i++ {
		rec[i*3073] = byte(i % 10)
	}
	for _, f := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), rec, 0o644))
	}
	edit(dir)
	return dir
}

// hostileCases builds every crafted input under root.
func hostileCases(t testing.TB, root string) []hostileCase {
	mn := func(dir string) []string {
		return []string{"-data", "mnist", "-data-dir", dir, "-model", "mlp", "-steps", "2", "-out", dir + "-out"}
	}
	ci := func(dir string) []string {
		return []string{"-data", "cifar10", "-data-dir", dir, "-steps", "2", "-out", dir + "-out"}
	}
	var cs []hostileCase
	add := func(name string, args []string, code int, want ...string) {
		cs = append(cs, hostileCase{name, args, code, want})
	}

	d := mnistDir(t, root, "idx-gzip-bomb", gzipBomb(t, 1_300_000), idxFile([]int{60000}, labels(60000)), nil, nil)
	require.NoError(t, os.Rename(filepath.Join(d, "train-images-idx3-ubyte"), filepath.Join(d, "train-images-idx3-ubyte.gz")))
	add("idx-gzip-bomb", mn(d), 1, filepath.Join(d, "train-labels-idx1-ubyte")+": offset 4: label count 60000 disagrees with image count 1300000")

	d = mnistDir(t, root, "idx-claims-more-than-file", idxFile([]int{60000, 28, 28}, make([]byte, 784)), nil, nil, nil)
	add("idx-claims-more-than-file", mn(d), 1, filepath.Join(d, "train-images-idx3-ubyte")+": offset 4: header [60000 28 28] claims 47040000 bytes", "the file has 800 bytes")

	d = mnistDir(t, root, "idx-gzip-claims-too-much", gz(t, idxFile([]int{60000, 28, 28}, make([]byte, 784))), nil, nil, nil)
	require.NoError(t, os.Rename(filepath.Join(d, "train-images-idx3-ubyte"), filepath.Join(d, "train-images-idx3-ubyte.gz")))
	add("idx-gzip-claims-too-much", mn(d), 1, filepath.Join(d, "train-images-idx3-ubyte.gz")+": offset 4: header [60000 28 28] claims 47040000 bytes", "gzip file can hold")

	noise := make([]byte, 1000) // incompressible, so the claim is within DEFLATE's bound
	for i, x := 0, uint32(1); i < len(noise); i++ {
		x = x*1664525 + 1013904223
		noise[i] = byte(x >> 24)
	}
	d = mnistDir(t, root, "idx-gzip-truncated", gz(t, idxFile([]int{64, 28, 28}, noise)), nil, nil, nil)
	require.NoError(t, os.Rename(filepath.Join(d, "train-images-idx3-ubyte"), filepath.Join(d, "train-images-idx3-ubyte.gz")))
	add("idx-gzip-truncated", mn(d), 1, filepath.Join(d, "train-images-idx3-ubyte.gz")+": offset 1016: IDX data truncated", "offset in decompressed data")

	d = mnistDir(t, root, "idx-wrong-geometry", idxFile([]int{600, 14, 56}, make([]byte, 600*784)), idxFile([]int{600}, labels(600)), nil, nil)
	add("idx-wrong-geometry", mn(d), 1, filepath.Join(d, "train-images-idx3-ubyte")+": offset 8: images are 14x56, want 28x28")

	d = mnistDir(t, root, "idx-empty-test", nil, nil, idxFile([]int{0, 28, 28}, nil), idxFile([]int{0}, nil))
	add("idx-empty-test", mn(d), 1, filepath.Join(d, "t10k-images-idx3-ubyte")+": offset 4: no images")

	d = mnistDir(t, root, "idx-test-wrong-shape", nil, nil, idxFile([]int{16, 14, 56}, make([]byte, 16*784)), nil)
	add("idx-test-wrong-shape", mn(d), 1, filepath.Join(d, "t10k-images-idx3-ubyte")+": offset 8: images are 14x56, want 28x28")

	bad := labels(16)
	bad[5] = 10
	d = mnistDir(t, root, "idx-test-label-range", nil, nil, nil, idxFile([]int{16}, bad))
	add("idx-test-label-range", mn(d), 1, filepath.Join(d, "t10k-labels-idx1-ubyte")+": offset 13: label 10 of item 5 out of range")

	d = mnistDir(t, root, "idx-bad-magic", []byte{1, 2, 8, 3, 0, 0, 0, 0}, nil, nil, nil)
	add("idx-bad-magic", mn(d), 1, filepath.Join(d, "train-images-idx3-ubyte")+": offset 0: bad IDX magic number")

	d = cifarDir(t, root, "cifar-dev-zero", func(dir string) {
		p := filepath.Join(dir, "data_batch_2.bin")
		require.NoError(t, os.Remove(p))
		require.NoError(t, os.Symlink("/dev/zero", p))
	})
	add("cifar-dev-zero", ci(d), 1, filepath.Join(d, "data_batch_2.bin")+": a character device (such as /dev/zero), not a regular file")

	d = cifarDir(t, root, "cifar-empty-batch", func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data_batch_3.bin"), nil, 0o644))
	})
	add("cifar-empty-batch", ci(d), 1, filepath.Join(d, "data_batch_3.bin")+": offset 0: empty file")

	d = cifarDir(t, root, "cifar-empty-test", func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "test_batch.bin"), nil, 0o644))
	})
	add("cifar-empty-test", ci(d), 1, filepath.Join(d, "test_batch.bin")+": offset 0: empty file")

	d = cifarDir(t, root, "cifar-truncated", func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data_batch_4.bin"), make([]byte, 2*3073+100), 0o644))
	})
	add("cifar-truncated", ci(d), 1, filepath.Join(d, "data_batch_4.bin")+": offset 6146: truncated record 2")

	d = cifarDir(t, root, "cifar-label-range", func(dir string) {
		b := make([]byte, 3*3073)
		b[2*3073] = 200
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data_batch_5.bin"), b, 0o644))
	})
	add("cifar-label-range", ci(d), 1, filepath.Join(d, "data_batch_5.bin")+": offset 6146: label 200 of record 2 out of range")

	add("batch-1e9", []string{"-batch", "1000000000", "-steps", "1", "-out", filepath.Join(root, "batch-out")}, 1,
		"batch size 1000000000 exceeds the 5000 images of synthetic/train: at most 5000 (-batch)")
	add("mfac-ngrads-20000", []string{"-optimizer", "mfac", "-ngrads", "20000", "-model", "mlp", "-hidden", "16", "-steps", "1", "-out", filepath.Join(root, "mfac-out")}, 1,
		"M-FAC's window of m = 20000 gradients of d = 49338 parameters (float32: 13.5 GB, and 6.4 GB more for a checkpoint)",
		"is available (MemAvailable): lower the window size (-ngrads)")
	add("mlp-hidden-1e8", []string{"-model", "mlp", "-hidden", "100000000", "-steps", "1", "-out", filepath.Join(root, "hidden-out")}, 1,
		"a model of 308300000010 parameters (float32, 5 copies: values, gradient, curvature buffer, optimizer moments) needs 6166.0 GB",
		"use a smaller model (-hidden, -model)")
	cs = append(cs, modelHostileCases(t, root)...)
	return append(cs, memoryCases(t, root)...)
}

// TestHostileInputs runs the command on crafted files and settings: each is
// refused before training with an error naming the file and the offset (or
// the flag), with no panic and no doubled prefix. With HOSTILE_OUT set, the
// files stay there with cases.tsv (name, then the arguments), for measuring
// each case's peak memory (cmd/train/hostile_rss.sh).
func TestHostileInputs(t *testing.T) {
	root := t.TempDir()
	keep := os.Getenv("HOSTILE_OUT")
	if keep != "" {
		root = keep
		require.NoError(t, os.MkdirAll(root, 0o755))
	}
	cs := hostileCases(t, root)
	mem := func() (int64, error) { return 2e9, nil } // a 2 GB machine
	var tsv strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&tsv, "%s\t%s\n", c.name, strings.Join(c.args, " "))
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runWith(append(c.args, "-quiet"), &out, &errb, mem)
			assert.Equal(t, c.code, code, errb.String())
			for _, w := range c.want {
				assert.Contains(t, errb.String(), w)
			}
			assert.NotContains(t, errb.String(), "train: train:")
			assert.NotContains(t, errb.String(), "panic")
		})
	}
	if keep != "" {
		require.NoError(t, os.WriteFile(filepath.Join(root, "cases.tsv"), []byte(tsv.String()), 0o644))
	}
}
