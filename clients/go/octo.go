// Package octo is a small helper over the generated Octo gRPC client (package octov1):
// dial with a token, stream a chat, resume a stream, and read errors with their
// google.rpc details.
//
//	client, err := octo.Dial("127.0.0.1:50051", octo.WithToken(os.Getenv("OCTO_TOKEN")))
//	session, err := client.CreateSession(ctx, "hello")
//	stream, err := client.Chat(ctx, session.GetName(), "hi")
//	for {
//		event, err := stream.Recv() // io.EOF after the terminal turn_finished
//		...
//	}
package octo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/octo-agents/octo/clients/go/octov1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Client holds one connection and the generated service clients.
type Client struct {
	Conn      *grpc.ClientConn
	Sessions  octov1.SessionServiceClient
	Chats     octov1.ChatServiceClient
	Models    octov1.ModelServiceClient
	Schedules octov1.ScheduleServiceClient
	Webhooks  octov1.WebhookServiceClient
	Files     octov1.FileServiceClient
}

type options struct {
	token string
	tls   *tls.Config
	dial  []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithToken sends `authorization: Bearer <token>` on every call.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS (Octo needs a token on non-loopback addresses; send it over TLS).
func WithTLS(config *tls.Config) Option { return func(o *options) { o.tls = config } }

// WithDialOptions adds grpc.DialOptions (interceptors, keepalive, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Dial connects to Octo at target (host:port). Without WithTLS it speaks plaintext h2c,
// which is what a local `octo serve` expects.
func Dial(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dial := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20))}
	if o.tls != nil {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(o.tls)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: o.tls != nil}))
	}
	dial = append(dial, o.dial...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{
		Conn:      conn,
		Sessions:  octov1.NewSessionServiceClient(conn),
		Chats:     octov1.NewChatServiceClient(conn),
		Models:    octov1.NewModelServiceClient(conn),
		Schedules: octov1.NewScheduleServiceClient(conn),
		Webhooks:  octov1.NewWebhookServiceClient(conn),
		Files:     octov1.NewFileServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false for plaintext connections so a token works against
// a loopback server; with WithTLS the token only travels over TLS.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// SessionName accepts `sessions/{id}` or a bare id.
func SessionName(session string) string {
	if strings.HasPrefix(session, "sessions/") {
		return session
	}
	return "sessions/" + session
}

// CreateSession creates a session with a display name.
func (c *Client) CreateSession(ctx context.Context, displayName string) (*octov1.Session, error) {
	s, err := c.Sessions.CreateSession(ctx, &octov1.CreateSessionRequest{
		Session: &octov1.Session{DisplayName: displayName},
	})
	return s, AsError(err)
}

// Stream is a stream of session events. Recv returns io.EOF when the stream ends (a Chat
// stream ends after its turn's terminal event); other errors are *Error.
type Stream struct {
	stream grpc.ServerStreamingClient[octov1.SessionEvent]
	cancel context.CancelFunc
}

// Recv returns the next event.
func (s *Stream) Recv() (*octov1.SessionEvent, error) {
	event, err := s.stream.Recv()
	if err == io.EOF {
		s.cancel()
		return nil, io.EOF
	}
	if err != nil {
		s.cancel()
		return nil, AsError(err)
	}
	return event, nil
}

// Close stops the stream (not the turn: CancelTurn does that).
func (s *Stream) Close() { s.cancel() }

// Until reads events until stop holds for one (included) or the stream ends.
func (s *Stream) Until(stop func(*octov1.SessionEvent) bool) ([]*octov1.SessionEvent, error) {
	var events []*octov1.SessionEvent
	for {
		event, err := s.Recv()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, event)
		if stop(event) {
			s.Close()
			return events, nil
		}
	}
}

// Chat sends a text message to a session and streams that turn's events until its
// terminal turn_finished.
func (c *Client) Chat(ctx context.Context, session, text string) (*Stream, error) {
	return c.ChatRequest(ctx, &octov1.ChatRequest{
		Session: SessionName(session),
		Parts:   []*octov1.Part{{Kind: &octov1.Part_Text{Text: text}}},
	})
}

// ChatRequest is Chat with the whole request (attachments, busy policy, model).
func (c *Client) ChatRequest(ctx context.Context, request *octov1.ChatRequest) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Chats.Chat(ctx, request)
	if err != nil {
		cancel()
		return nil, AsError(err)
	}
	return &Stream{stream: stream, cancel: cancel}, nil
}

// StreamEvents streams a snapshot, every event after afterSequence, then live events.
// It does not end by itself: Close it (or cancel ctx) when done.
func (c *Client) StreamEvents(ctx context.Context, session string, afterSequence int64) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Chats.StreamEvents(ctx, &octov1.StreamEventsRequest{
		Session:       SessionName(session),
		AfterSequence: afterSequence,
	})
	if err != nil {
		cancel()
		return nil, AsError(err)
	}
	return &Stream{stream: stream, cancel: cancel}, nil
}

// IsTerminal reports whether an event ends a turn (turn_finished) or its session.
func IsTerminal(event *octov1.SessionEvent) bool {
	return event.GetTurnFinished() != nil || event.GetSessionDeleted() != nil
}

// Text concatenates the text deltas of events.
func Text(events []*octov1.SessionEvent) string {
	var b strings.Builder
	for _, e := range events {
		if d := e.GetTextDelta(); d != nil {
			b.WriteString(d.GetText())
		}
	}
	return b.String()
}

// Error is a failed call's status with its google.rpc details decoded.
type Error struct {
	Code    codes.Code
	Message string
	// ErrorInfo (Domain "octo.v1", a stable Reason), if present.
	Info *errdetails.ErrorInfo
	// BadRequest's field violations of an INVALID_ARGUMENT.
	FieldViolations []*errdetails.BadRequest_FieldViolation
	// ResourceInfo of a NOT_FOUND / ALREADY_EXISTS / ABORTED.
	Resource *errdetails.ResourceInfo
	// RetryInfo of a RESOURCE_EXHAUSTED / UNAVAILABLE.
	Retry *errdetails.RetryInfo
	// Every detail, decoded.
	Details []any
	status  *status.Status
}

func (e *Error) Error() string { return fmt.Sprintf("octo: %s: %s", e.Code, e.Message) }

// GRPCStatus lets status.FromError and status.Code see through Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Reason is the ErrorInfo reason (e.g. SESSION_NOT_FOUND), or "".
func (e *Error) Reason() string { return e.Info.GetReason() }

// AsError turns a gRPC error into *Error (nil stays nil; non-gRPC errors are returned as is).
func AsError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st, Details: st.Details()}
	for _, detail := range out.Details {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			out.Info = d
		case *errdetails.BadRequest:
			out.FieldViolations = append(out.FieldViolations, d.GetFieldViolations()...)
		case *errdetails.ResourceInfo:
			out.Resource = d
		case *errdetails.RetryInfo:
			out.Retry = d
		}
	}
	return out
}
