package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeModelFile writes a model file under root through a buffer, calling
// body to write what lies between prefix and suffix (so that a 100 MB file
// never sits in memory), and returns its path.
func writeModelFile(t testing.TB, root, name, prefix string, body func(w *bufio.Writer), suffix string) string {
	p := filepath.Join(root, name)
	f, err := os.Create(p)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(prefix)
	body(w)
	w.WriteString(suffix)
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	return p
}

// reluLayers writes n ReLU layers, each followed by a comma.
func reluLayers(n int) func(*bufio.Writer) {
	return func(w *bufio.Writer) {
		for i := 0; i < n; i++ {
			w.WriteString(`{"type":"relu"},`)
		}
	}
}

// modelHostileCases builds the crafted -model files of issue 19 under root:
// each is refused before anything is built, naming the file and, for its
// content, the line and column; the files over nn.MaxSpecFileSize are
// refused by their length, unread.
func modelHostileCases(t testing.TB, root string) []hostileCase {
	var cs []hostileCase
	add := func(name, model string, want ...string) {
		cs = append(cs, hostileCase{name, []string{"-model", model, "-steps", "1", "-out", filepath.Join(root, name+"-out")}, 2, want})
	}
	none := func(*bufio.Writer) {}
	const head = `{"input_shape":[3,32,32],"layers":[{"type":"flatten"},{"type":"linear","name":"a","in":3072,"out":4},`
	const tail = `{"type":"linear","name":"b","in":4,"out":10}]}`

	add("model-dev-zero", "/dev/zero", "train: -model: /dev/zero: not a regular file (a character device)")
	fifo := filepath.Join(root, "model-fifo.json")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	add("model-fifo", fifo, "train: -model: "+fifo+": not a regular file (a FIFO)")
	add("model-unknown-name", "gpt", `train: -model "gpt": not a built-in model (mlp, cnn, resnetN (N = 6n+2: resnet8, resnet20, …), gpt-tiny) and no such file`)

	p := writeModelFile(t, root, "model-name-100MB.json", `{"input_shape":[3,32,32],"layers":[{"type":"flatten"},{"type":"linear","name":"`, func(w *bufio.Writer) {
		chunk := bytes.Repeat([]byte("n"), 1<<20)
		for i := 0; i < 100; i++ {
			w.Write(chunk)
		}
	}, `","in":3072,"out":10}]}`)
	add("model-name-100MB", p, "train: -model: "+p+": file too large: 104.9 MB, more than the limit of 1.0 MB (nn.MaxSpecFileSize")
	p = writeModelFile(t, root, "model-relu-1e6.json", head, reluLayers(1_000_000), tail)
	add("model-relu-1e6", p, "train: -model: "+p+": file too large: 16.0 MB, more than the limit of 1.0 MB")
	p = writeModelFile(t, root, "model-size-limit.json", head, func(w *bufio.Writer) {
		w.WriteString(`{"type":"relu"}`)
		w.Write(bytes.Repeat([]byte(" "), nn.MaxSpecFileSize-len(head)-len(tail)-len(`{"type":"relu"}`)))
		w.WriteString(",")
	}, tail)
	add("model-size-limit", p, "train: -model: "+p+": file too large: 1.0 MB, more than the limit of 1.0 MB")

	p = writeModelFile(t, root, "model-relu-1001.json", head, reluLayers(nn.MaxLayers-2), tail)
	add("model-relu-1001", p, "train: -model "+p+" (", "): nn: spec: 1001 layers, more than the limit of 1000 (nn.MaxLayers)")
	p = writeModelFile(t, root, "model-name-257.json", `{"input_shape":[3,32,32],"layers":[{"type":"flatten"},{"type":"linear","name":"`+strings.Repeat("n", 257), none, `","in":3072,"out":10}]}`)
	add("model-name-257", p, "nn: spec: layer 1 (linear): name \"nnnn", "has 257 bytes, more than the limit of 256 (nn.MaxNameLen)")
	p = writeModelFile(t, root, "model-trailing.json", head+"\n", none, tail+"\n]")
	add("model-trailing", p, "train: -model "+p+" (", "): nn: parsing model: line 3, column 1 (byte 149): data after the JSON value")
	p = writeModelFile(t, root, "model-truncated.json", head+"\n", none, tail[:20])
	add("model-truncated", p, "nn: parsing model: line 2, column 21 (byte 122): unexpected end of input")
	p = writeModelFile(t, root, "model-syntax.json", head+"\n", none, "{\"type\":\"linear\" \"name\":\"b\"}]}")
	add("model-syntax", p, "nn: parsing model: line 2, column 18 (byte 119): syntax error: invalid character '\"' after object key:value pair")
	p = writeModelFile(t, root, "model-shape-1e19.json", `{"input_shape":[4, 10000000000000000000],"layers":[]}`, none, "")
	add("model-shape-1e19", p, "nn: parsing spec: line 1, column 20 (byte 19): input_shape: got number 10000000000000000000, want an integer from -9223372036854775808 to 9223372036854775807")
	p = writeModelFile(t, root, "model-unknown-key.json", head+"\n", none, `{"type":"linear","name":"b","in":4,"out":10,"outs":3}]}`)
	add("model-unknown-key", p, `nn: parsing spec: line 2, column 45 (byte 146): unknown field "outs" in layers[2] (known: channels, eps, in, kernel, momentum, name, out, pad, stride, type)`)
	return cs
}

// TestModelFIFODoesNotBlock: a FIFO given as -model is refused at once
// (without a writer, opening it for reading would block forever); the test
// fails instead of hanging if it is not.
func TestModelFIFODoesNotBlock(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := readModel(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		assert.EqualError(t, err, "-model: "+fifo+": not a regular file (a FIFO)")
	case <-time.After(10 * time.Second):
		// Unblock the reader so that the test ends.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("readSpec blocked on a FIFO")
	}
}

// TestReadModelFile: a model file in either format reads back as its DAG:
// a layer list (converted) or a DAG; a file of exactly nn.MaxSpecFileSize
// bytes is still read (the limit is inclusive); a file with both formats'
// keys is refused, naming them.
func TestReadModelFile(t *testing.T) {
	resnet, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	for name, c := range map[string]struct {
		file any
		want nn.DAG
	}{"layer list": {nn.CNNSpec(3, 32, 10), nn.CNN(3, 32, 10)}, "DAG": {resnet, resnet}} {
		b, err := json.MarshalIndent(c.file, "", "  ")
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), "model.json")
		pad := nn.MaxSpecFileSize - len(b)
		require.NoError(t, os.WriteFile(p, append(b, bytes.Repeat([]byte("\n"), pad)...), 0o644))
		got, err := readModel(p)
		require.NoError(t, err, name)
		assert.Equal(t, c.want, got, name)
		require.NoError(t, os.WriteFile(p, append(b, bytes.Repeat([]byte("\n"), pad+1)...), 0o644))
		_, err = readModel(p)
		assert.ErrorContains(t, err, fmt.Sprintf("-model: %s: file too large", p), name)
	}
	p := filepath.Join(t.TempDir(), "both.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"input_shape":[4],"layers":[],"nodes":[],"output":"fc"}`), 0o644))
	_, err = readModel(p)
	assert.ErrorContains(t, err, `nn: parsing model: it has both "layers" (a layer list) and "nodes" (a DAG)`)
}
