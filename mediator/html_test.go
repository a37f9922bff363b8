package mediator_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/parley-dev/parley/mediator"
)

// chromium returns the path of Debian's chromium, skipping the test when it
// is absent outside CI (CI installs it: see .ci/run) and failing in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI installs it (apt-get install chromium), see .ci/run")
	}
	t.Skip("chromium is not installed: apt-get update && apt-get install -y chromium")
	return ""
}

// TestHTMLReportInChromium renders an audit report with a timeline,
// findings and evidence in headless Chromium, driven over the DevTools
// protocol: the page loads without console errors or exceptions, its DOM
// holds the timeline SVG with one row per notified activity, and a
// screenshot of it is a real picture.
func TestHTMLReportInChromium(t *testing.T) {
	bin := chromium(t)
	d := newDiskNet(t)
	entries := d.exchange(t, 45)
	dir := t.TempDir()
	alpha, _ := d.file.Agreement.Party("alpha")
	forged := sha256.Sum256([]byte("another history"))
	d.writeDir(t, dir, map[string][][]byte{"alpha": entries, "bravo": entries, "charlie": entries[:30]},
		&mediator.Collected{Cosigned: map[string][]byte{alpha.LogOrigin: d.checkpoint(t, "alpha", 45, forged[:], true)}})
	rep, err := mediator.AuditDir(dir, d.base.AddDate(0, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Timeline) == 0 || len(rep.Evidence) == 0 {
		t.Fatalf("the report has %d activities and %d pieces of evidence, want some of each", len(rep.Timeline), len(rep.Evidence))
	}
	page := filepath.Join(t.TempDir(), "report.html")
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, external := range []string{`src="http`, `href="http`, `@import`, `url(`} {
		if strings.Contains(b.String(), external) {
			t.Errorf("the page refers to an external resource (%s)", external)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cdp := startChromium(t, ctx, bin)
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		cdp.call(t, m, nil)
	}
	cdp.call(t, "Page.navigate", map[string]any{"url": "file://" + page})
	cdp.waitEvent(t, ctx, "Page.loadEventFired")
	time.Sleep(300 * time.Millisecond) // let late console messages arrive

	var eval struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	cdp.callInto(t, "Runtime.evaluate", map[string]any{"returnByValue": true, "expression": `JSON.stringify({
		svg: !!document.querySelector("svg#timeline"),
		rows: document.querySelectorAll("svg#timeline g.activity").length,
		late: document.querySelectorAll("svg#timeline g.activity.late").length,
		dueMarkers: document.querySelectorAll("svg#timeline line.due").length,
		findings: document.querySelectorAll("#findings-table tr[data-party]").length,
		width: document.querySelector("svg#timeline").getBoundingClientRect().width
	})`}, &eval)
	var dom struct {
		SVG        bool    `json:"svg"`
		Rows       int     `json:"rows"`
		Late       int     `json:"late"`
		DueMarkers int     `json:"dueMarkers"`
		Findings   int     `json:"findings"`
		Width      float64 `json:"width"`
	}
	if err := json.Unmarshal([]byte(eval.Result.Value), &dom); err != nil {
		t.Fatalf("couldn't read the DOM summary %q: %v", eval.Result.Value, err)
	}
	if !dom.SVG || dom.Rows != len(rep.Timeline) || dom.DueMarkers != len(rep.Timeline) || dom.Width < 500 {
		t.Errorf("timeline in the DOM: %+v, want the SVG with %d rows, each with its lead-time marker", dom, len(rep.Timeline))
	}
	if dom.Late == 0 || dom.Findings != len(rep.Findings) {
		t.Errorf("DOM: %d late rows, %d findings rows; want some late rows and %d findings", dom.Late, dom.Findings, len(rep.Findings))
	}

	var shot struct {
		Data string `json:"data"`
	}
	cdp.callInto(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot)
	img, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	// PARLEY_SCREENSHOT_DIR keeps the page and its screenshot for a look.
	keep := os.Getenv("PARLEY_SCREENSHOT_DIR")
	if keep == "" {
		keep = t.TempDir()
	}
	shotFile := filepath.Join(keep, "report.png")
	_ = os.WriteFile(filepath.Join(keep, "report.html"), b.Bytes(), 0o644)
	_ = os.WriteFile(shotFile, img, 0o644)
	pic, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	colors := map[uint32]bool{}
	bounds := pic.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, b, _ := pic.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if bounds.Dx() < 1000 || bounds.Dy() < 600 || len(colors) < 20 || len(img) < 20000 {
		t.Errorf("screenshot %s is %dx%d, %d bytes, %d colours: want a real rendering", shotFile, bounds.Dx(), bounds.Dy(), len(img), len(colors))
	}
	if errs := cdp.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors while rendering the report:\n%s", strings.Join(errs, "\n"))
	}
}

// devtools is a minimal Chrome DevTools Protocol client over a websocket.
type devtools struct {
	ws *websocket.Conn

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan json.RawMessage
	events  []cdpEvent
	notify  chan struct{}
}

type cdpEvent struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// startChromium starts headless chromium with remote debugging and
// connects to its page.
func startChromium(t *testing.T, ctx context.Context, bin string) *devtools {
	t.Helper()
	// Chromium forks helpers (zygote, renderers, crashpad) that keep
	// writing to the profile directory after the browser process dies:
	// run it in a process group of its own, kill the whole group, and only
	// then remove the profile (t.TempDir would race with the helpers).
	profile, err := os.MkdirTemp("", "parley-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+profile, "--window-size=1280,2000",
		"--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		// The group's last helpers may take a moment to die.
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil {
				return
			}
			if i == 50 {
				t.Logf("couldn't remove chromium's profile %s: %v", profile, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	re := regexp.MustCompile(`DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)`)
	var port string
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			port = m[2]
			break
		}
	}
	if port == "" {
		t.Fatalf("chromium did not open its DevTools port:\n%s", log.String())
	}
	go io.Copy(io.Discard, stderr)
	var targets []struct {
		Type string `json:"type"`
		URL  string `json:"webSocketDebuggerUrl"`
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	var wsURL string
	for _, tg := range targets {
		if tg.Type == "page" {
			wsURL = tg.URL
		}
	}
	if wsURL == "" {
		t.Fatalf("chromium has no page target: %+v", targets)
	}
	ws, err := websocket.Dial(wsURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	ws.MaxPayloadBytes = 64 << 20
	t.Cleanup(func() { ws.Close() })
	d := &devtools{ws: ws, waiting: map[int]chan json.RawMessage{}, notify: make(chan struct{}, 1)}
	go d.read()
	return d
}

func (d *devtools) read() {
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := websocket.JSON.Receive(d.ws, &msg); err != nil {
			d.mu.Lock()
			for id, ch := range d.waiting {
				close(ch)
				delete(d.waiting, id)
			}
			d.mu.Unlock()
			return
		}
		d.mu.Lock()
		if msg.ID != 0 {
			if ch, ok := d.waiting[msg.ID]; ok {
				if msg.Error != nil {
					ch <- append(json.RawMessage(`{"__error":`), append(msg.Error, '}')...)
				} else {
					ch <- msg.Result
				}
				delete(d.waiting, msg.ID)
			}
		} else {
			d.events = append(d.events, cdpEvent{msg.Method, msg.Params})
			select {
			case d.notify <- struct{}{}:
			default:
			}
		}
		d.mu.Unlock()
	}
}

func (d *devtools) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	ch := make(chan json.RawMessage, 1)
	d.waiting[id] = ch
	d.mu.Unlock()
	if params == nil {
		params = map[string]any{}
	}
	if err := websocket.JSON.Send(d.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case res, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the DevTools connection closed", method)
		}
		if bytes.HasPrefix(res, []byte(`{"__error":`)) {
			t.Fatalf("%s: %s", method, res)
		}
		return res
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer in 30s", method)
	}
	return nil
}

func (d *devtools) callInto(t *testing.T, method string, params, out any) {
	t.Helper()
	if err := json.Unmarshal(d.call(t, method, params), out); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

func (d *devtools) waitEvent(t *testing.T, ctx context.Context, method string) {
	t.Helper()
	for {
		d.mu.Lock()
		for _, e := range d.events {
			if e.Method == method {
				d.mu.Unlock()
				return
			}
		}
		d.mu.Unlock()
		select {
		case <-d.notify:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("no %s event: %v", method, ctx.Err())
		}
	}
}

// consoleErrors returns the console errors, uncaught exceptions and
// browser log errors seen so far.
func (d *devtools) consoleErrors() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.events {
		switch e.Method {
		case "Runtime.exceptionThrown":
			out = append(out, "exception: "+string(e.Params))
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(e.Params, &p)
			if p.Type == "error" || p.Type == "assert" {
				out = append(out, "console."+p.Type+": "+string(e.Params))
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level string `json:"level"`
					Text  string `json:"text"`
					URL   string `json:"url"`
				} `json:"entry"`
			}
			_ = json.Unmarshal(e.Params, &p)
			if p.Entry.Level == "error" {
				out = append(out, fmt.Sprintf("log error: %s (%s)", p.Entry.Text, p.Entry.URL))
			}
		}
	}
	return out
}
