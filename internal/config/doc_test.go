package config

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated reference in docs/configuration.md")

// referenceDoc is the configuration reference; the part between the
// markers is generated from the documented config.Node struct.
const referenceDoc = "../../docs/configuration.md"

const (
	beginMarker = "<!-- BEGIN GENERATED REFERENCE: go test ./internal/config -run TestConfigurationReference -update -->"
	endMarker   = "<!-- END GENERATED REFERENCE -->"
)

// TestConfigurationReference checks that docs/configuration.md documents
// every field of node.yaml with its Go doc comment: the reference is
// generated from the source of this package, and -update rewrites it.
func TestConfigurationReference(t *testing.T) {
	doc, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(doc, []byte(beginMarker))
	if !ok {
		t.Fatalf("%s has no line %q", referenceDoc, beginMarker)
	}
	_, after, ok := bytes.Cut(rest, []byte(endMarker))
	if !ok {
		t.Fatalf("%s has no line %q", referenceDoc, endMarker)
	}
	ref, err := reference(".")
	if err != nil {
		t.Fatal(err)
	}
	want := string(before) + beginMarker + "\n" + ref + endMarker + string(after)
	if string(doc) == want {
		return
	}
	if *update {
		if err := os.WriteFile(referenceDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the documented config.Node: run\n\tgo test ./internal/config -run TestConfigurationReference -update", referenceDoc)
}

// TestReferenceCoversEveryField checks the generator against reflection:
// every yaml key of config.Node, nested sections included, is in the
// generated reference.
func TestReferenceCoversEveryField(t *testing.T) {
	ref, err := reference(".")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			if !strings.Contains(ref, "### `"+key+"`") {
				t.Errorf("the reference does not document %s", key)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(key+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[Node]())
}

// reference renders the reference of node.yaml from the Go source of the
// package in dir: one section per field of Node, nested structs as dotted
// keys, each with its type and doc comment.
func reference(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	structs := map[string]*ast.TypeSpec{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return "", err
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if _, ok := ts.Type.(*ast.StructType); ok {
					if ts.Doc == nil {
						ts.Doc = gd.Doc
					}
					structs[ts.Name.Name] = ts
				}
			}
		}
	}
	var b strings.Builder
	var render func(prefix string, ts *ast.TypeSpec) error
	render = func(prefix string, ts *ast.TypeSpec) error {
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil || len(field.Names) != 1 {
				continue
			}
			tag := reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Get("yaml")
			name, _, _ := strings.Cut(tag, ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			goName := field.Names[0].Name
			text := strings.Join(strings.Fields(field.Doc.Text()), " ")
			if text == "" {
				return fmt.Errorf("field %s.%s (%s) has no doc comment", ts.Name.Name, goName, key)
			}
			if rest, ok := strings.CutPrefix(text, goName+" "); ok {
				text = "`" + name + "` " + rest
			}
			// Keep <party> and the like visible in Markdown.
			text = strings.NewReplacer("<", `\<`, ">", `\>`).Replace(text)
			nested := structs[typeName(field.Type)]
			typ := yamlType(field.Type)
			if nested != nil {
				typ = "section"
			}
			fmt.Fprintf(&b, "### `%s`\n\n*%s*\n\n%s\n\n", key, typ, text)
			if nested != nil {
				if err := render(key+".", nested); err != nil {
					return err
				}
			}
		}
		return nil
	}
	node, ok := structs["Node"]
	if !ok {
		return "", fmt.Errorf("no struct Node in %s", dir)
	}
	if err := render("", node); err != nil {
		return "", err
	}
	return b.String(), nil
}

func typeName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// yamlType names a Go field type the way a node.yaml author sees it.
func yamlType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "string":
			return "string"
		case "int", "int64", "uint32", "uint64":
			return "integer"
		case "float64":
			return "number"
		case "bool":
			return "boolean"
		}
		return e.Name
	case *ast.MapType:
		return "map of " + yamlType(e.Key) + " to " + yamlType(e.Value)
	case *ast.ArrayType:
		return "list of " + yamlType(e.Elt)
	}
	return "value"
}
