// SPDX-License-Identifier: MIT
// The chat page (web/) at GET / and /index.html: static, embedded at build time, served without the API key (it asks
// for the key itself and sends it with its API calls).
#pragma once
#include <functional>
#include <string>

namespace httplib {
class Server;
}

namespace ds::server {

// True for the page's own paths and methods, which the API key does not guard.
bool is_web_page(const std::string& method, const std::string& path);

// Registers the page's routes; `count(status)` is called once per response (for deepseek_http_requests_total).
void add_web_page(httplib::Server& svr, std::function<void(int)> count);

}  // namespace ds::server
