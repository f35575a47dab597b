// The code of README.md, kept compiling.

package octo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	octo "github.com/octo-agents/octo/clients/go"
	"github.com/octo-agents/octo/clients/go/octov1"
)

// Example is the README's example, compiled by go test (not run: it needs a server).
func Example() {
	ctx := context.Background()
	// Plaintext h2c suits a local server; add octo.WithTLS(&tls.Config{}) elsewhere.
	client, err := octo.Dial("127.0.0.1:50051", octo.WithToken(os.Getenv("OCTO_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	session, err := client.CreateSession(ctx, "hello")
	if err != nil {
		log.Fatal(err)
	}

	// The stream ends (io.EOF) after the turn's terminal turn_finished event.
	stream, err := client.Chat(ctx, session.GetName(), "What is in this directory?")
	if err != nil {
		log.Fatal(err)
	}
	var firstSequence int64
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if delta := event.GetTextDelta(); delta != nil {
			if firstSequence == 0 {
				firstSequence = event.GetSequence()
			}
			fmt.Print(delta.GetText())
		}
	}
	fmt.Println()

	// Resume: a snapshot, then every event after a sequence, then live events.
	resumed, err := client.StreamEvents(ctx, session.GetName(), firstSequence)
	if err != nil {
		log.Fatal(err)
	}
	events, err := resumed.Until(octo.IsTerminal) // closes the stream at the terminal event
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after the first token:", octo.Text(events))

	// The generated clients are there for everything else; octo.AsError decodes details.
	_, err = client.Sessions.GetSession(ctx, &octov1.GetSessionRequest{
		Name: "sessions/019a0000-0000-7000-8000-000000000000",
	})
	var octoErr *octo.Error
	if errors.As(octo.AsError(err), &octoErr) {
		fmt.Println(octoErr.Code, octoErr.Reason(), octoErr.Resource.GetResourceName())
		for _, v := range octoErr.FieldViolations { // for INVALID_ARGUMENT
			fmt.Println(v.GetField(), v.GetDescription())
		}
	}
}
