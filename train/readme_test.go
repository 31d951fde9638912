package train

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's block of defaults is OptimizerHelp's, read from the
// Configs: a default changed in a Config and not in the README fails here.
func TestREADMEDefaults(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(b), "```\n  sgd ")
	require.True(t, ok, "README.md has the block of defaults")
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	assert.Equal(t, OptimizerHelp(), "  sgd "+block)
}
