package stock

// The catalog identifies stock Gorgonia ops. Gorgonia v0.9.18 keeps its op
// types and operator codes unexported, so the catalog builds one reference
// node per stock function (gorgonia.Add, gorgonia.Tanh, gorgonia.Conv2d's
// parts, …) in a scratch graph and records the Go type of its op and, for
// the element-wise and linear-algebra families, the operator code or
// function its op holds. A user's op is then identified by comparing its
// type and operator with the references: nothing depends on how an op
// prints, and an op the references do not cover is reported as unknown
// rather than guessed.

import (
	"fmt"
	"reflect"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kind is one stock operation the translator knows.
type kind int

const (
	kUnknown kind = iota
	// element-wise binary (elemBinOp)
	kAdd
	kSub
	kMul
	kDiv
	kPow
	kLt
	kGt
	kLte
	kGte
	kEq
	kNe
	// element-wise unary (elemUnaryOp)
	kAbs
	kSign
	kCeil
	kFloor
	kSin
	kCos
	kExp
	kLn
	kLog2
	kNeg
	kSquare
	kSqrt
	kInverse
	kInverseSqrt
	kCube
	kTanh
	kSigmoid
	kLog1p
	kExpm1
	kSoftplus
	// linear algebra (linAlgBinOp)
	kMatMul
	kMatVec
	kVecDot
	kOuter
	kBatchedMatMul
	// structural and layer ops, one Go type each
	kSum
	kMax
	kReshape
	kTranspose
	kSoftmax
	kIm2Col
	kMaxPool
	kBatchNorm
	kDropout
	kConcat
	kSlice
	kSize
	kRepeat
	kConstant
	kGlobalAvgPool
)

// words says what each kind is, in the words of Gorgonia's API.
var words = map[kind]string{
	kAdd: "element-wise addition (gorgonia.Add)", kSub: "element-wise subtraction (gorgonia.Sub)",
	kMul: "element-wise product (gorgonia.HadamardProd)", kDiv: "element-wise division (gorgonia.HadamardDiv)",
	kPow: "element-wise power (gorgonia.Pow)", kLt: "comparison x < y (gorgonia.Lt)", kGt: "comparison x > y (gorgonia.Gt)",
	kLte: "comparison x <= y (gorgonia.Lte)", kGte: "comparison x >= y (gorgonia.Gte)", kEq: "comparison x == y (gorgonia.Eq)",
	kNe: "comparison x != y (gorgonia.Ne)", kAbs: "absolute value (gorgonia.Abs)", kSign: "sign (gorgonia.Sign)",
	kCeil: "ceiling (gorgonia.Ceil)", kFloor: "floor (gorgonia.Floor)", kSin: "sine (gorgonia.Sin)", kCos: "cosine (gorgonia.Cos)",
	kExp: "exponential (gorgonia.Exp)", kLn: "natural logarithm (gorgonia.Log)", kLog2: "base-2 logarithm (gorgonia.Log2)",
	kNeg: "negation (gorgonia.Neg)", kSquare: "square (gorgonia.Square)", kSqrt: "square root (gorgonia.Sqrt)",
	kInverse: "reciprocal (gorgonia.Inverse)", kInverseSqrt: "reciprocal square root (gorgonia.InverseSqrt)",
	kCube: "cube (gorgonia.Cube)", kTanh: "tanh (gorgonia.Tanh)", kSigmoid: "sigmoid (gorgonia.Sigmoid)",
	kLog1p: "log(1+x) (gorgonia.Log1p)", kExpm1: "exp(x)-1 (gorgonia.Expm1)", kSoftplus: "softplus (gorgonia.Softplus)",
	kMatMul: "matrix product (gorgonia.Mul)", kMatVec: "matrix-vector product (gorgonia.Mul)", kVecDot: "dot product (gorgonia.Mul)",
	kOuter: "outer product (gorgonia.OuterProd)", kBatchedMatMul: "batched matrix product (gorgonia.BatchedMatMul)",
	kSum: "sum (gorgonia.Sum)", kMax: "maximum over axes (gorgonia.Max)", kReshape: "reshape (gorgonia.Reshape)",
	kTranspose: "transpose (gorgonia.Transpose)", kSoftmax: "softmax (gorgonia.SoftMax)", kIm2Col: "im2col (gorgonia.Im2Col)",
	kMaxPool:   "max pooling (gorgonia.MaxPool2D)",
	kBatchNorm: "batch normalisation (gorgonia.BatchNorm)", kDropout: "dropout (gorgonia.Dropout)", kConcat: "concatenation (gorgonia.Concat)",
	kSlice: "slice (gorgonia.Slice)", kSize: "size of an axis (gorgonia.SizeOf)", kRepeat: "broadcast repeat (gorgonia.Broadcast*)",
	kConstant: "constant", kGlobalAvgPool: "global average pooling (gorgonia.GlobalAveragePool2D)",
}

// catalog maps reference ops to kinds.
type catalog struct {
	byType  map[reflect.Type]kind // ops identified by their Go type alone
	elemBin reflect.Type
	binCode map[uint64]kind // elemBinOp's operator code
	elemUn  reflect.Type
	unFn    map[uintptr]kind // elemUnaryOp's operator function, per dtype
	linAlg  reflect.Type
	linCode map[uint64]kind // linAlgBinOp's operator code
}

// newCatalog builds the reference ops.
func newCatalog() (c *catalog, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("stock: building the reference ops: %v", r)
		}
	}()
	c = &catalog{byType: map[reflect.Type]kind{}, binCode: map[uint64]kind{}, unFn: map[uintptr]kind{}, linCode: map[uint64]kind{}}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		if err := c.add(dt); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// add records the reference ops of one dtype.
func (c *catalog) add(dt tensor.Dtype) error {
	g := gorgonia.NewGraph()
	m := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(2, 2), gorgonia.WithName("m"))
	v := gorgonia.NewVector(g, dt, gorgonia.WithShape(2), gorgonia.WithName("v"))
	t3 := gorgonia.NewTensor(g, dt, 3, gorgonia.WithShape(2, 2, 2), gorgonia.WithName("t3"))
	im := gorgonia.NewTensor(g, dt, 4, gorgonia.WithShape(1, 1, 4, 4), gorgonia.WithName("im"))
	var firstErr error
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return n
	}
	bins := []struct {
		k kind
		f func(a, b *gorgonia.Node) (*gorgonia.Node, error)
	}{
		{kAdd, gorgonia.Add}, {kSub, gorgonia.Sub}, {kMul, gorgonia.HadamardProd}, {kDiv, gorgonia.HadamardDiv}, {kPow, gorgonia.Pow},
		{kLt, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Lt(a, b, true) }},
		{kGt, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Gt(a, b, true) }},
		{kLte, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Lte(a, b, true) }},
		{kGte, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Gte(a, b, true) }},
		{kEq, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Eq(a, b, true) }},
		{kNe, func(a, b *gorgonia.Node) (*gorgonia.Node, error) { return gorgonia.Ne(a, b, true) }},
	}
	for _, b := range bins {
		n := must(b.f(m, m))
		if n == nil {
			continue
		}
		op := n.Op()
		c.elemBin = reflect.TypeOf(op)
		code, ok := binOpCode(op)
		if !ok {
			return fmt.Errorf("stock: cannot read the operator of reference %s (%T)", words[b.k], op)
		}
		c.binCode[code] = b.k
	}
	uns := []struct {
		k kind
		f func(*gorgonia.Node) (*gorgonia.Node, error)
	}{
		{kAbs, gorgonia.Abs}, {kSign, gorgonia.Sign}, {kCeil, gorgonia.Ceil}, {kFloor, gorgonia.Floor}, {kSin, gorgonia.Sin},
		{kCos, gorgonia.Cos}, {kExp, gorgonia.Exp}, {kLn, gorgonia.Log}, {kLog2, gorgonia.Log2}, {kNeg, gorgonia.Neg},
		{kSquare, gorgonia.Square}, {kSqrt, gorgonia.Sqrt}, {kInverse, gorgonia.Inverse}, {kInverseSqrt, gorgonia.InverseSqrt},
		{kCube, gorgonia.Cube}, {kTanh, gorgonia.Tanh}, {kSigmoid, gorgonia.Sigmoid}, {kLog1p, gorgonia.Log1p},
		{kExpm1, gorgonia.Expm1}, {kSoftplus, gorgonia.Softplus},
	}
	for _, u := range uns {
		// A fresh input each time: stabilisation rewrites some
		// compositions (log of a softmax, neg of a neg).
		x := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(2, 2))
		n := must(u.f(x))
		if n == nil {
			continue
		}
		op := n.Op()
		c.elemUn = reflect.TypeOf(op)
		fn, ok := unaryOpFunc(op)
		if !ok {
			return fmt.Errorf("stock: cannot read the operator of reference %s (%T)", words[u.k], op)
		}
		c.unFn[fn] = u.k
	}
	lins := []struct {
		k kind
		n *gorgonia.Node
	}{
		{kMatMul, must(gorgonia.Mul(m, m))}, {kMatVec, must(gorgonia.Mul(m, v))}, {kVecDot, must(gorgonia.Mul(v, v))},
		{kOuter, must(gorgonia.OuterProd(v, v))}, {kBatchedMatMul, must(gorgonia.BatchedMatMul(t3, t3))},
	}
	for _, l := range lins {
		if l.n == nil {
			continue
		}
		c.linAlg = reflect.TypeOf(l.n.Op())
		code, ok := uintField(l.n.Op(), "āBinaryOperator")
		if !ok {
			return fmt.Errorf("stock: cannot read the operator of reference %s (%T)", words[l.k], l.n.Op())
		}
		c.linCode[code] = l.k
	}
	bnOp := &gorgonia.BatchNormOp{}
	pooled := must(gorgonia.MaxPool2D(im, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
	types := []struct {
		k kind
		n *gorgonia.Node
	}{
		{kSum, must(gorgonia.Sum(m, 0))}, {kMax, must(gorgonia.Max(m, 0))},
		{kReshape, must(gorgonia.Reshape(m, tensor.Shape{4}))}, {kTranspose, must(gorgonia.Transpose(m))},
		{kSoftmax, must(gorgonia.SoftMax(m))}, {kIm2Col, must(gorgonia.Im2Col(im, tensor.Shape{2, 2}, tensor.Shape{0, 0}, tensor.Shape{1, 1}, tensor.Shape{1, 1}))},
		{kMaxPool, pooled}, {kDropout, must(gorgonia.Dropout(m, 0.5))},
		{kConcat, must(gorgonia.Concat(0, m, m))}, {kSlice, must(gorgonia.Slice(m, gorgonia.S(0)))},
		{kSize, must(gorgonia.SizeOf(0, m))}, {kConstant, gorgonia.NewConstant(1.0)}, {kConstant, gorgonia.NewConstant(tensor.New(tensor.WithShape(2), tensor.Of(dt)))},
		{kGlobalAvgPool, must(gorgonia.GlobalAveragePool2D(im))},
	}
	for _, t := range types {
		if t.n != nil {
			c.byType[reflect.TypeOf(t.n.Op())] = t.k
		}
	}
	c.byType[reflect.TypeOf(gorgonia.Op(bnOp))] = kBatchNorm
	// The repeat op of a broadcast: the op of the node gorgonia.Broadcast
	// makes from a [1, 2] operand.
	row := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(1, 2))
	_, rb, err := gorgonia.Broadcast(m, row, gorgonia.NewBroadcastPattern(nil, []byte{0}))
	if err != nil {
		return fmt.Errorf("stock: reference broadcast: %w", err)
	}
	c.byType[reflect.TypeOf(rb.Op())] = kRepeat
	return firstErr
}

// kindOf identifies op (kUnknown if the catalog does not know it).
func (c *catalog) kindOf(op gorgonia.Op) kind {
	t := reflect.TypeOf(op)
	switch t {
	case c.elemBin:
		if code, ok := binOpCode(op); ok {
			return c.binCode[code]
		}
	case c.elemUn:
		if fn, ok := unaryOpFunc(op); ok {
			return c.unFn[fn]
		}
	case c.linAlg:
		if code, ok := uintField(op, "āBinaryOperator"); ok {
			return c.linCode[code]
		}
	}
	return c.byType[t]
}

// field returns the named field of op's struct (through pointers and
// embedded structs); ok is false when there is none.
func field(op any, name string) (reflect.Value, bool) {
	v := reflect.Indirect(reflect.ValueOf(op))
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.FieldByName(name)
	return f, f.IsValid()
}

func uintField(op any, name string) (uint64, bool) {
	f, ok := field(op, name)
	if !ok {
		return 0, false
	}
	switch f.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return f.Uint(), true
	}
	return 0, false
}

func intField(op any, name string) (int, bool) {
	f, ok := field(op, name)
	if !ok || (f.Kind() != reflect.Int && f.Kind() != reflect.Int64) {
		return 0, false
	}
	return int(f.Int()), true
}

func boolField(op any, name string) (bool, bool) {
	f, ok := field(op, name)
	if !ok || f.Kind() != reflect.Bool {
		return false, false
	}
	return f.Bool(), true
}

func floatField(op any, name string) (float64, bool) {
	f, ok := field(op, name)
	if !ok || (f.Kind() != reflect.Float64 && f.Kind() != reflect.Float32) {
		return 0, false
	}
	return f.Float(), true
}

// intsField reads an []int field (tensor.Shape, axes, a transpose pattern).
func intsField(op any, name string) ([]int, bool) {
	f, ok := field(op, name)
	if !ok || f.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]int, f.Len())
	for i := range out {
		e := f.Index(i)
		if e.Kind() != reflect.Int {
			return nil, false
		}
		out[i] = int(e.Int())
	}
	return out, true
}

// binOpCode is the operator code inside an elemBinOp: its embedded
// operator (scalarBinOp or tensorBinOp) holds the code as its first field.
func binOpCode(op any) (uint64, bool) {
	f, ok := field(op, "ʘBinaryOperator")
	if !ok || f.Kind() != reflect.Interface || f.IsNil() {
		return 0, false
	}
	inner := reflect.Indirect(f.Elem())
	if inner.Kind() != reflect.Struct || inner.NumField() == 0 {
		return 0, false
	}
	code := inner.Field(0)
	switch code.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return code.Uint(), true
	}
	return 0, false
}

// unaryOpFunc is the address of the operator function an elemUnaryOp
// holds (one shared value per operator and dtype).
func unaryOpFunc(op any) (uintptr, bool) {
	f, ok := field(op, "ʘUnaryOperator")
	if !ok || f.Kind() != reflect.Interface || f.IsNil() {
		return 0, false
	}
	e := f.Elem()
	if e.Kind() != reflect.Pointer {
		return 0, false
	}
	return e.Pointer(), true
}
