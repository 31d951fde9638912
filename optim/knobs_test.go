package optim_test

import (
	"errors"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type knobConfig struct {
	Rate   float64 `hyper:"lr" doc:"learning rate"`
	Window int     `hyper:"ngrads" doc:"window"`
	On     bool    `hyper:"nesterov" doc:"switch"`
	Seed   uint64  // not a knob
}

func TestKnobs(t *testing.T) {
	c := knobConfig{Rate: 0.1, Window: 4, On: true, Seed: 9}
	knobs, err := optim.Knobs(c)
	require.NoError(t, err)
	assert.Equal(t, []optim.Knob{
		{Name: "lr", Doc: "learning rate", Kind: optim.KnobFloat, Value: 0.1},
		{Name: "ngrads", Doc: "window", Kind: optim.KnobInt, Value: 4},
		{Name: "nesterov", Doc: "switch", Kind: optim.KnobBool, Value: true},
	}, knobs)
	same, err := optim.Knobs(&c)
	require.NoError(t, err)
	assert.Equal(t, knobs, same, "a pointer reads the same")
	_, err = optim.Knobs(3)
	assert.ErrorContains(t, err, "not a struct")
	_, err = optim.Knobs(struct {
		S string `hyper:"s"`
	}{})
	assert.ErrorContains(t, err, "field S is a string, want float64, int or bool")
}

func TestSetKnob(t *testing.T) {
	var c knobConfig
	require.NoError(t, optim.SetKnob(&c, "lr", 3))
	require.NoError(t, optim.SetKnob(&c, "ngrads", 8.0)) // as JSON decodes it
	require.NoError(t, optim.SetKnob(&c, "nesterov", true))
	assert.Equal(t, knobConfig{Rate: 3, Window: 8, On: true}, c)

	for _, tc := range []struct {
		name string
		x    any
		want string
	}{
		{"ngrads", 2.5, "hyperparameter ngrads = 2.5: must be a whole number of at most 2147483647 in magnitude"},
		{"ngrads", 1e12, "hyperparameter ngrads = 1e+12: must be a whole number"},
		{"ngrads", -3e9, "must be a whole number"},
		{"ngrads", "8", "hyperparameter ngrads = 8: a string, want a whole number"},
		{"lr", "0.1", "hyperparameter lr = 0.1: a string, want a number"},
		{"nesterov", 1.0, "hyperparameter nesterov = 1: a float64, want true or false"},
	} {
		err := optim.SetKnob(&c, tc.name, tc.x)
		assert.ErrorContains(t, err, tc.want, "%s = %v", tc.name, tc.x)
	}
	assert.Equal(t, knobConfig{Rate: 3, Window: 8, On: true}, c, "nothing set by a refused value")
	err := optim.SetKnob(&c, "Rate", 1.0)
	assert.True(t, errors.Is(err, optim.ErrNoKnob), "the field's Go name is not the knob's: %v", err)
	assert.ErrorContains(t, optim.SetKnob(c, "lr", 1.0), "not a pointer to a Config")
}
