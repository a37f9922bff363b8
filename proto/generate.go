// Package proto holds Parley's protocol buffer sources. The generated Go
// lives in proto/parley/v1 (package parleyv1) and is committed.
//
// Regenerate with:
//
//	go generate ./proto
//
// buf is pinned in tools/buf/go.mod (it needs a newer protobuf than the
// module itself, so it lives in its own module); protoc-gen-go and
// protoc-gen-go-grpc are pinned as tools in the main go.mod. Everything
// works offline from the module cache.
package proto

//go:generate go tool -modfile=../tools/buf/go.mod buf format -w --path parley
//go:generate go tool -modfile=../tools/buf/go.mod buf lint ..
//go:generate sh -c "cd .. && go tool -modfile=tools/buf/go.mod buf generate --path proto/parley"
