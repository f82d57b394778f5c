// SPDX-License-Identifier: MIT
// The chat page (web/) at GET / and /index.html: static, embedded at build time, served without the API key (it asks
// for the key itself and sends it with its API calls).
#pragma once
#include <string>
#include <string_view>

#include "server/http.h"

namespace ds::server {

// True for the page's own paths and methods, which the API key does not guard.
bool is_web_page(const std::string& method, const std::string& path);

struct WebPageResponse {
  int status = 200;
  HttpHeaders headers;
  std::string_view body;  // static data (the embedded page, or its inflated copy)
};
// The answer to GET/HEAD of the page (is_web_page).
WebPageResponse web_page(const HttpRequest& req);

}  // namespace ds::server
