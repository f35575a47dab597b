package octo_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	octo "github.com/octo-agents/octo/clients/go"
	"github.com/octo-agents/octo/clients/go/octov1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	token   = "go-test-token"
	missing = "sessions/019a0000-0000-7000-8000-000000000000"
	// A safety net for every test, never a synchronisation device.
	timeout = 60 * time.Second
)

var address string

// TestMain starts a live `octo serve --demo` (mock model) on an ephemeral port:
// $OCTO_BIN, else target/debug/octo of this repository.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	binary := os.Getenv("OCTO_BIN")
	if binary == "" {
		binary, _ = filepath.Abs("../../target/debug/octo")
	}
	dir, err := os.MkdirTemp("", "octo-go-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(binary, "serve", "--demo", "--listen", "127.0.0.1:0")
	// Octo reads every OCTO_* variable as config and refuses unknown keys.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCTO_BIN=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"HOME="+dir, "XDG_CONFIG_HOME="+dir+"/config", "XDG_DATA_HOME="+dir+"/data",
		"OCTO_TOKEN="+token, "RUST_LOG=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		panic(err)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot start %s (run cargo build or set OCTO_BIN): %v\n", binary, err)
		return 1
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	found := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`octo listening address=(\S+)`)
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			if match := listening.FindStringSubmatch(scanner.Text()); match != nil {
				select {
				case found <- match[1]:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			fmt.Fprintln(os.Stderr, "octo exited before listening")
			return 1
		}
		address = addr
	case <-time.After(120 * time.Second):
		fmt.Fprintln(os.Stderr, "octo did not start in time")
		return 1
	}
	return m.Run()
}

func dial(t *testing.T) (*octo.Client, context.Context) {
	t.Helper()
	client, err := octo.Dial(address, octo.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return client, ctx
}

func chat(t *testing.T, client *octo.Client, ctx context.Context, session, text string) []*octov1.SessionEvent {
	t.Helper()
	stream, err := client.Chat(ctx, session, text)
	if err != nil {
		t.Fatal(err)
	}
	var events []*octov1.SessionEvent
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			return events
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, event)
	}
}

func TestChatStreamsToTheTerminalEvent(t *testing.T) {
	client, ctx := dial(t)
	session, err := client.CreateSession(ctx, "go chat")
	if err != nil {
		t.Fatal(err)
	}
	events := chat(t, client, ctx, session.GetName(), "hello from go")
	last := events[len(events)-1]
	if !octo.IsTerminal(last) || last.GetTurnFinished().GetTurn().GetStatus() != octov1.TurnStatus_TURN_STATUS_SUCCEEDED {
		t.Fatalf("last event %v, want a succeeded turn_finished", last)
	}
	if got := octo.Text(events); got != "Echo: hello from go" {
		t.Fatalf("text %q", got)
	}
	for i := 1; i < len(events); i++ {
		if events[i].GetSequence() <= events[i-1].GetSequence() {
			t.Fatalf("sequences not increasing at %d: %d after %d", i, events[i].GetSequence(), events[i-1].GetSequence())
		}
	}
}

func TestListMessagesNewestFirst(t *testing.T) {
	client, ctx := dial(t)
	session, err := client.CreateSession(ctx, "go history")
	if err != nil {
		t.Fatal(err)
	}
	chat(t, client, ctx, session.GetName(), "first")
	chat(t, client, ctx, session.GetName(), "second")
	list, err := client.Chats.ListMessages(ctx, &octov1.ListMessagesRequest{Parent: session.GetName()})
	if err != nil {
		t.Fatal(octo.AsError(err))
	}
	var texts []string
	for _, m := range list.GetMessages() {
		var b strings.Builder
		for _, p := range m.GetParts() {
			b.WriteString(p.GetText())
		}
		texts = append(texts, m.GetRole().String()+":"+b.String())
	}
	want := "ROLE_ASSISTANT:Echo: second|ROLE_USER:second|ROLE_ASSISTANT:Echo: first|ROLE_USER:first"
	if got := strings.Join(texts, "|"); got != want {
		t.Fatalf("messages %q, want %q", got, want)
	}
}

func TestResumeFromASequence(t *testing.T) {
	client, ctx := dial(t)
	session, err := client.CreateSession(ctx, "go resume")
	if err != nil {
		t.Fatal(err)
	}
	events := chat(t, client, ctx, session.GetName(), "resume me please")
	var first *octov1.SessionEvent
	for _, e := range events {
		if e.GetTextDelta() != nil {
			first = e
			break
		}
	}
	stream, err := client.StreamEvents(ctx, session.GetName(), first.GetSequence())
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := stream.Until(octo.IsTerminal)
	if err != nil {
		t.Fatal(err)
	}
	if resumed[0].GetSnapshot() == nil {
		t.Fatalf("first resumed event %v, want a snapshot", resumed[0])
	}
	for _, e := range resumed[1:] {
		if e.GetSequence() <= first.GetSequence() {
			t.Fatalf("event %d is not after %d", e.GetSequence(), first.GetSequence())
		}
	}
	want := strings.TrimPrefix(octo.Text(events), first.GetTextDelta().GetText())
	if got := octo.Text(resumed); got != want {
		t.Fatalf("resumed text %q, want %q", got, want)
	}
}

func TestNotFoundCarriesResourceInfo(t *testing.T) {
	client, ctx := dial(t)
	_, err := client.Sessions.GetSession(ctx, &octov1.GetSessionRequest{Name: missing})
	octoErr, ok := octo.AsError(err).(*octo.Error)
	if !ok {
		t.Fatalf("error %v is not *octo.Error", err)
	}
	if octoErr.Code != codes.NotFound || octoErr.Reason() != "SESSION_NOT_FOUND" || octoErr.Info.GetDomain() != "octo.v1" {
		t.Fatalf("got %v reason %q", octoErr, octoErr.Reason())
	}
	if octoErr.Resource.GetResourceName() != missing || octoErr.Resource.GetResourceType() != "octo.v1.Session" {
		t.Fatalf("resource info %v", octoErr.Resource)
	}
	if status.Code(octoErr) != codes.NotFound {
		t.Fatal("status.Code does not see through *octo.Error")
	}
}

func TestInvalidArgumentCarriesFieldViolations(t *testing.T) {
	client, ctx := dial(t)
	_, err := client.Sessions.CreateSession(ctx, &octov1.CreateSessionRequest{
		Session: &octov1.Session{WorkingDir: "../outside"},
	})
	octoErr, ok := octo.AsError(err).(*octo.Error)
	if !ok || octoErr.Code != codes.InvalidArgument {
		t.Fatalf("error %v, want INVALID_ARGUMENT", err)
	}
	if len(octoErr.FieldViolations) != 1 || octoErr.FieldViolations[0].GetField() != "session.working_dir" {
		t.Fatalf("violations %v", octoErr.FieldViolations)
	}
}

func TestStreamErrorsCarryDetails(t *testing.T) {
	client, ctx := dial(t)
	stream, err := client.Chat(ctx, missing, "anyone there?")
	if err == nil {
		_, err = stream.Recv()
	}
	octoErr, ok := err.(*octo.Error)
	if !ok || octoErr.Code != codes.NotFound || octoErr.Resource.GetResourceName() != missing {
		t.Fatalf("error %v, want NOT_FOUND with the resource", err)
	}
}

func TestMissingTokenIsUnauthenticated(t *testing.T) {
	client, err := octo.Dial(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = client.Sessions.ListSessions(ctx, &octov1.ListSessionsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("error %v, want UNAUTHENTICATED", err)
	}
}
