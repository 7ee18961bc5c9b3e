// Command podapp is the application of the real node's test pods, in a
// distroless-style image with no shell: it serves HTTP on -addr, answering
// with its pod name, and writes one line to stdout when it starts and when
// SIGTERM arrives, so that the node's container log records both times.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// SigtermLine is what podapp prints when SIGTERM arrives.
const SigtermLine = "podapp: SIGTERM"

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	linger := flag.Duration("linger", 0, "how long to keep serving after SIGTERM")
	flag.Parse()
	name := os.Getenv("POD_NAME")
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, name)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		fmt.Println(SigtermLine)
		time.Sleep(*linger)
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Println("podapp: serving on", *addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "podapp:", err)
		os.Exit(1)
	}
}
