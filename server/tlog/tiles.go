package tlog

import (
	"errors"
	"io/fs"
	"net/http"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
)

// TileHandler returns a read-only handler for the log's public C2SP
// tlog-tiles resources, served from the log directory:
//
//	/checkpoint
//	/tile/<L>/<N>[.p/<W>]
//	/tile/entries/<N>[.p/<W>]
//
// Paths are relative to the handler's root; mount it under a prefix with
// [http.StripPrefix]. Only GET and HEAD are allowed. Any other path,
// including anything with "..", Tessera's private .state directory and
// temporary files, is not found: a path is served only if it is the
// canonical form of a tile or bundle address, and files are opened through
// an [os.Root] confined to the directory. Authentication (mTLS) is the
// server's job.
func (l *Log) TileHandler() http.Handler {
	return http.HandlerFunc(l.serveTile)
}

func (l *Log) serveTile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD are allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	immutable, ok := publicPath(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := l.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		l.logger.ErrorContext(r.Context(), "couldn't open tile", "path", name, "err", err)
		http.Error(w, "couldn't read the resource", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	if immutable {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "max-age=31536000, immutable")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// publicPath reports whether name is the canonical path of a public
// tlog-tiles resource, and whether that resource never changes (tiles and
// entry bundles do not; the checkpoint does).
func publicPath(name string) (immutable, ok bool) {
	if name == layout.CheckpointPath {
		return false, true
	}
	if rest, found := strings.CutPrefix(name, "tile/entries/"); found {
		i, p, err := layout.ParseTileIndexPartial(rest)
		return true, err == nil && layout.EntriesPath(i, p) == name
	}
	if rest, found := strings.CutPrefix(name, "tile/"); found {
		level, index, _ := strings.Cut(rest, "/")
		l, i, p, err := layout.ParseTileLevelIndexPartial(level, index)
		return true, err == nil && layout.TilePath(l, i, p) == name
	}
	return false, false
}
