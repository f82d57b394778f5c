// SPDX-License-Identifier: MIT
// The server's HTTP/1.1 transport (Boost.Beast; the only file that includes Beast or Asio is http.cpp).
// Accepting and reading requests is asynchronous on one I/O thread, so slow or idle connections hold no worker
// thread; a complete request is handed to a worker pool, where the handler runs synchronously and writes its response
// through an HttpResponder (whole, or streamed with chunked encoding). Every write has a deadline, so a client that
// stops reading cannot hold a worker. Limits enforced here, before any handler runs: body size however it is framed,
// header section size and count, URI length, one deadline for a whole request, keep-alive idle time and request count,
// open connections. Range headers are never honoured (always full responses).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ds::server {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpOptions {
  size_t max_body_bytes = 16u << 20;    // Content-Length, chunked or neither: larger -> 413 and close
  size_t max_header_bytes = 64u << 10;  // request line + header lines -> 431 (414 when the request line is that long)
  size_t max_headers = 100;             // header lines -> 431
  size_t max_uri_bytes = 8u << 10;      // request target -> 414
  int read_timeout_s = 30;              // one request's headers and body, from its first byte (the first: from accept)
  int write_timeout_s = 30;             // one write (a whole response, or one chunk of a streamed one)
  int keep_alive_s = 5;                 // idle time between requests on a connection
  int keep_alive_max = 100;             // requests per connection
  int threads = 16;                     // workers that run handlers
  int max_connections = 512;            // open connections; beyond it new ones are closed at once
  int send_buffer_bytes = 0;            // SO_SNDBUF of each connection (0: the kernel's autotuning, up to MBs)
  // The body (JSON) of an error the transport answers itself (400, 411, 413, 414, 431); called on the I/O thread.
  std::function<std::string(int status, const std::string& message)> error_body;
};

struct HttpRequest {
  std::string method;  // as sent: GET, POST, HEAD, OPTIONS, ...
  std::string target;  // the raw request target
  std::string path;    // target before '?', percent-decoded
  std::string query;   // after '?', raw
  int version = 11;    // 10 or 11
  HttpHeaders headers;
  std::string body;
  std::string remote;  // peer address
  // Case-insensitive; "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// What a handler writes its response through. Every call returns false once the client is gone or a write missed
// its deadline (the connection is then closed after the handler returns).
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  // A whole response, with Content-Length (no body for HEAD).
  virtual bool send(int status, const HttpHeaders& headers, std::string_view body) = 0;
  // A streamed response: the headers (chunked encoding; HTTP/1.0: the body ends with the connection), then write()
  // each piece, then finish().
  virtual bool begin(int status, const HttpHeaders& headers) = 0;
  virtual bool write(std::string_view data) = 0;
  virtual bool finish() = 0;
  // A response was begun or sent.
  virtual bool started() const = 0;
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponder&)>;
  HttpServer(HttpOptions opt, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // Binds and listens (throws ds::Error naming host and port); returns the port (port 0: any free one).
  int bind(const std::string& host, int port);
  // The bound address is a loopback one (127.0.0.0/8, ::1).
  bool loopback() const;
  // Serves until stop(); returns once every connection is closed and every handler has returned.
  void serve();
  // Thread-safe: stops accepting, closes connections that are not in a handler; the others close when it returns.
  void stop();

  struct Impl;  // defined in http.cpp (public only so that its connections can name it)

 private:
  std::shared_ptr<Impl> impl_;
};

// A blocking HTTP/1.1 client for tools (bench-serve): one request per connection. `on_data` receives the body as it
// arrives (de-chunked). Returns the status, or -1 when the connection or the exchange failed (`error` says why).
int http_request(const std::string& host, int port, const std::string& method, const std::string& target,
                 const HttpHeaders& headers, const std::string& body,
                 const std::function<void(std::string_view)>& on_data, std::string* error = nullptr);

}  // namespace ds::server
