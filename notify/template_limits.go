package notify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// Limits of a notification template. A template is written by an API
// caller and executed by the server, so every execution is bounded: the
// source is parsed once, and each render runs on a budget that stops it
// with an error matching ErrTemplateLimit.
const (
	// MaxTemplateSource bounds the length of a subject or body template.
	MaxTemplateSource = 16 << 10
	// MaxTemplateOutput bounds the rendered subject and, apart, the
	// rendered body, and every string a template function returns.
	MaxTemplateOutput = 64 << 10
	// MaxTemplateRenderTime bounds one render (subject and body).
	MaxTemplateRenderTime = 100 * time.Millisecond
	// MaxTemplateLoops bounds the iterations of every {{range}} of one
	// render together.
	MaxTemplateLoops = 100_000
	// MaxTemplateWidth bounds a printf width or precision.
	MaxTemplateWidth = 1000
)

// ErrTemplateLimit reports a template over one of the limits above, at Set
// or at render; it matches ErrTemplate.
var ErrTemplateLimit = fmt.Errorf("%w: over a limit", ErrTemplate)

// limitError is one exceeded limit; its message names the limit.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return ErrTemplateLimit }

func limitErrorf(format string, args ...any) error {
	return &limitError{fmt.Sprintf(format, args...)}
}

var (
	errRenderTime = limitErrorf("takes longer than %v to render: simplify loops", MaxTemplateRenderTime)
	errLoops      = limitErrorf("runs more than %d loop iterations: simplify loops", MaxTemplateLoops)
	errNoDefine   = errors.New("{{define}}, {{template}} and {{block}} are not supported: write the text inline")
)

func errOutput(where string) error {
	return limitErrorf("renders more than %d KiB%s: shorten the text or its loops", MaxTemplateOutput>>10, where)
}

// Counters for tests: how many templates were parsed and executed.
var parses, executions atomic.Int64

// budget is what one render may still spend. It is used by one goroutine.
type budget struct {
	deadline time.Time
	loops    int
}

func newBudget() *budget { return &budget{deadline: time.Now().Add(MaxTemplateRenderTime)} }

func (b *budget) check() error {
	if time.Now().After(b.deadline) {
		return errRenderTime
	}
	return nil
}

// tick is the function called at the start of every loop iteration; it
// returns false, for {{if _dgtick}}{{end}}. It reads the clock every 16th
// iteration (an iteration costs more than the clock).
func (b *budget) tick() (bool, error) {
	b.loops++
	if b.loops > MaxTemplateLoops {
		return false, errLoops
	}
	if b.loops%16 != 0 {
		return false, nil
	}
	return false, b.check()
}

// result checks a string a template function returns.
func (b *budget) result(name, s string) (string, error) {
	if len(s) > MaxTemplateOutput {
		return "", errOutput(" in " + name)
	}
	return s, b.check()
}

// tickFunc is the function instrument calls at each loop iteration.
const tickFunc = "_dgtick"

// tickNode is {{if _dgtick}}{{end}}, copied into every range body: it
// calls the budget and prints nothing.
var tickNode = func() parse.Node {
	t := template.Must(template.New("tick").Funcs(template.FuncMap{tickFunc: func() bool { return false }}).Parse("{{if " + tickFunc + "}}{{end}}"))
	return t.Tree.Root.Nodes[0]
}()

// instrument refuses associated templates (recursion would be unbounded)
// and makes every loop iteration call the render budget.
func instrument(t *template.Template) error {
	if len(t.Templates()) > 1 || t.Tree == nil {
		return errNoDefine
	}
	var walk func(l *parse.ListNode) error
	walk = func(l *parse.ListNode) error {
		if l == nil {
			return nil
		}
		for _, n := range l.Nodes {
			var b *parse.BranchNode
			switch n := n.(type) {
			case *parse.TemplateNode:
				return errNoDefine
			case *parse.IfNode:
				b = &n.BranchNode
			case *parse.WithNode:
				b = &n.BranchNode
			case *parse.RangeNode:
				b = &n.BranchNode
			default:
				continue
			}
			if err := walk(b.List); err != nil {
				return err
			}
			if err := walk(b.ElseList); err != nil {
				return err
			}
			if b.NodeType != parse.NodeRange {
				continue
			}
			for _, body := range []*parse.ListNode{b.List, b.ElseList} {
				if body != nil {
					body.Nodes = append([]parse.Node{tickNode.Copy()}, body.Nodes...)
				}
			}
		}
		return nil
	}
	return walk(t.Tree.Root)
}

// execute runs t (parsed by parseText) on data within b: the output is capped
// at MaxTemplateOutput, loops and functions spend b.
func execute(t *template.Template, b *budget, data any, lenient bool) (string, error) {
	executions.Add(1)
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	if lenient {
		c.Option("missingkey=zero")
	}
	c.Funcs(guardedFuncs(b))
	w := &capWriter{b: b}
	if err := c.Execute(w, data); err != nil {
		return "", err
	}
	return w.buf.String(), nil
}

// capWriter is a template's output, refusing more than MaxTemplateOutput.
type capWriter struct {
	b   *budget
	buf bytes.Buffer
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > MaxTemplateOutput {
		return 0, errOutput("")
	}
	if err := w.b.check(); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// parseFuncs are the functions templates are parsed with; execute binds
// them to a budget.
var parseFuncs = guardedFuncs(&budget{deadline: time.Now().Add(100 * 365 * 24 * time.Hour)})

// guardedFuncs returns the template functions bound to b: ours and the
// builtins that build strings (print, printf, println, html, js,
// urlquery), each refusing a result over MaxTemplateOutput before it
// allocates much more than that.
func guardedFuncs(b *budget) template.FuncMap {
	str := func(name string, f func(string) string) func(string) (string, error) {
		return func(s string) (string, error) {
			if err := b.check(); err != nil {
				return "", err
			}
			return b.result(name, f(s))
		}
	}
	str2 := func(name string, f func(any) (string, error)) func(any) (string, error) {
		return func(v any) (string, error) {
			if err := b.check(); err != nil {
				return "", err
			}
			s, err := f(v)
			if err != nil {
				return "", err
			}
			return b.result(name, s)
		}
	}
	// concat bounds fmt.Sprint(args...) (and the builtins that start with
	// it) before anything is formatted together.
	concat := func(name string, f func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			if err := b.check(); err != nil {
				return "", err
			}
			if _, err := argsLen(name, args); err != nil {
				return "", err
			}
			return b.result(name, f(args...))
		}
	}
	return template.FuncMap{
		tickFunc:   b.tick,
		"upper":    str("upper", strings.ToUpper),
		"lower":    str("lower", strings.ToLower),
		"bytes":    str2("bytes", humanBytes),
		"duration": str2("duration", humanDuration),
		"datetime": str2("datetime", datetime),
		"default": func(def, v any) (any, error) {
			if err := b.check(); err != nil {
				return nil, err
			}
			if v == nil || v == "" || v == 0 {
				return def, nil
			}
			return v, nil
		},
		"print":    concat("print", fmt.Sprint),
		"println":  concat("println", fmt.Sprintln),
		"html":     concat("html", template.HTMLEscaper),
		"js":       concat("js", template.JSEscaper),
		"urlquery": concat("urlquery", template.URLQueryEscaper),
		"printf": func(format string, args ...any) (string, error) {
			if err := b.check(); err != nil {
				return "", err
			}
			if err := checkPrintf(format, args); err != nil {
				return "", err
			}
			return b.result("printf", fmt.Sprintf(format, args...))
		},
	}
}

// argLen is the length of fmt.Sprint(a) (and of a's text in the escaping
// builtins).
func argLen(a any) int {
	if s, ok := a.(string); ok {
		return len(s)
	}
	return len(fmt.Sprint(a))
}

// argsLen bounds the length of fmt.Sprint(args...) and fmt.Sprintln: the
// operands and a separator each.
func argsLen(name string, args []any) (int, error) {
	n := 1
	for _, a := range args {
		n += argLen(a) + 1
		if n > MaxTemplateOutput {
			return n, errOutput(" in " + name)
		}
	}
	return n, nil
}

// checkPrintf refuses a printf whose widths or precisions exceed
// MaxTemplateWidth (or come from arguments, "*"), and one whose result
// would exceed MaxTemplateOutput: it formats each verb alone with its
// argument, as fmt does, adding up the lengths, and stops as soon as the
// sum is over. No single verb can then allocate much more than the limit.
func checkPrintf(format string, args []any) error {
	total, argNum, reordered := 0, 0, false
	add := func(n int) error {
		total += n
		if total > MaxTemplateOutput {
			return errOutput(" in printf")
		}
		return nil
	}
	// index reads an argument index "[n]" at i, as fmt's argNumber.
	index := func(i int) (int, bool) {
		if i >= len(format) || format[i] != '[' {
			return i, false
		}
		reordered = true
		for j := i + 1; j < len(format); j++ {
			if format[j] == ']' {
				n := 0
				for _, c := range format[i+1 : j] {
					if c < '0' || c > '9' || n > len(args) {
						return j + 1, true // fmt reports a bad index
					}
					n = n*10 + int(c-'0')
				}
				if n >= 1 && n <= len(args) {
					argNum = n - 1
				}
				return j + 1, true
			}
		}
		return i + 1, true
	}
	// number reads digits at i, refusing more than MaxTemplateWidth.
	number := func(i int, what string) (string, int, error) {
		j, n := i, 0
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			n = n*10 + int(format[j]-'0')
			if n > MaxTemplateWidth {
				return "", j, limitErrorf("printf %s is over %d: use a smaller one", what, MaxTemplateWidth)
			}
			j++
		}
		if j < len(format) && format[j] == '*' {
			return "", j, limitErrorf("printf %s from an argument (*) is not supported: write it as a number up to %d", what, MaxTemplateWidth)
		}
		return format[i:j], j, nil
	}
	for i := 0; i < len(format); {
		if format[i] != '%' {
			j := strings.IndexByte(format[i:], '%')
			if j < 0 {
				j = len(format) - i
			}
			if err := add(j); err != nil {
				return err
			}
			i += j
			continue
		}
		i++
		start := i
		for i < len(format) && strings.IndexByte("#0+- ", format[i]) >= 0 {
			i++
		}
		spec := "%" + format[start:i]
		i, _ = index(i)
		width, i2, err := number(i, "width")
		if err != nil {
			return err
		}
		i, spec = i2, spec+width
		if i+1 < len(format) && format[i] == '.' {
			i, _ = index(i + 1)
			prec, i2, err := number(i, "precision")
			if err != nil {
				return err
			}
			i, spec = i2, spec+"."+prec
		}
		i, _ = index(i)
		if i >= len(format) {
			return add(16) // %!(NOVERB)
		}
		verb, size := utf8.DecodeRuneInString(format[i:])
		i += size
		switch {
		case verb == '%':
			err = add(1)
		case argNum >= len(args):
			err = add(32) // %!d(MISSING)
		default:
			err = add(len(fmt.Sprintf(spec+string(verb), args[argNum])) + 32)
			argNum++
		}
		if err != nil {
			return err
		}
	}
	if !reordered {
		for _, a := range args[min(argNum, len(args)):] { // %!(EXTRA type=value)
			if err := add(argLen(a) + 64); err != nil {
				return err
			}
		}
	}
	return nil
}
