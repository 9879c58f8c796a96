// The sale's static minisite (orders_api/sales/site.py): the stock from the public
// sale API, the order through the JSON API, then the order followed to "fulfilled"
// (its websocket; polling its status API once a second when the socket fails).
// No cookie is sent: the API knows this browser by a random secret of its own.
(function () {
  "use strict";
  var RANK = { accepted: 0, queued: 1, in_warehouse: 2, failed: 2, fulfilled: 3 };
  var LABEL = {
    accepted: "accepted", queued: "queued for the warehouse",
    in_warehouse: "in the warehouse", fulfilled: "fulfilled", failed: "waiting for the warehouse"
  };
  function q(name) { return document.querySelector("[data-site=" + name + "]"); }
  var form = q("buy-form");
  if (!form) { return; }
  var button = form.querySelector("button[type=submit]");
  var stock = q("stock"), error = q("error"), soldOut = q("sold-out"), order = q("order");

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    window.crypto.getRandomValues(values);
    return Array.prototype.map.call(values, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  var secret = null;
  function clientSecret() {
    if (secret) { return secret; }
    try {
      secret = window.localStorage.getItem("orders-client-secret");
      if (!secret) { secret = randomHex(16); window.localStorage.setItem("orders-client-secret", secret); }
    } catch (e) { secret = randomHex(16); }
    return secret;
  }

  function showStock(text, kind) { stock.textContent = text; stock.className = "stock stock-" + kind; }
  function close(title) {
    form.hidden = true;
    soldOut.hidden = false;
    q("sold-out-title").textContent = title;
    showStock(title === "Sold out" ? "Sold out" : "Sale closed", "out");
  }
  function showBoard(board) {
    if (board.status !== "open") { close("The sale is over"); return; }
    if (board.sold_out || board.remaining <= 0) { close("Sold out"); return; }
    showStock(board.remaining + " left", board.remaining > 10 ? "ok" : "low");
  }
  function showError(text) { error.textContent = text; error.hidden = false; }

  fetch(form.getAttribute("data-sale-api"), { headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (board) { if (board) { showBoard(board); } })
    .catch(function () { /* the form still works; the API says sold out if it is */ });

  var shown = -1, done = false;
  function showOrder(status) {
    var rank = RANK[status];
    if (rank === undefined || (rank < shown && status !== "fulfilled")) { return; }
    shown = rank;
    order.setAttribute("data-status", status);
    q("status-label").textContent = LABEL[status] || status;
    var steps = order.querySelectorAll(".journey li");
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i].getAttribute("data-step");
      steps[i].classList.toggle("done", RANK[step] <= rank && status !== "failed");
      steps[i].classList.toggle("current", step === status);
    }
    done = status === "fulfilled";
  }
  function poll(url) {
    if (done) { return; }
    fetch(url, { headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state) { showOrder(state.status); } })
      .catch(function () {})
      .then(function () { if (!done) { setTimeout(function () { poll(url); }, 1000); } });
  }
  function follow(accepted) {
    form.hidden = true;
    order.hidden = false;
    q("number").textContent = accepted.number;
    q("page-link").setAttribute("href", accepted.page_url);
    showOrder(accepted.status);
    if (!window.WebSocket) { poll(accepted.status_url); return; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + accepted.ws_url);
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "order.state") { showOrder(message.state.status); }
      if (done) { socket.close(); }
    };
    socket.onclose = function () { if (!done) { poll(accepted.status_url); } };
  }

  var key = null, sent = null;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var quantity = Number(form.elements.quantity.value);
    var body = JSON.stringify({
      sku: form.getAttribute("data-sku"),
      quantity: Number.isInteger(quantity) ? quantity : form.elements.quantity.value,
      email: form.elements.email.value
    });
    // The same attempt sent again keeps its key (it orders once); a changed one is new.
    if (body !== sent) { key = randomHex(16); sent = body; }
    button.disabled = true;
    fetch("/api/orders/", {
      method: "POST",
      credentials: "omit",
      headers: {
        "Content-Type": "application/json", Accept: "application/json",
        "Idempotency-Key": key, "Orders-Client-Secret": clientSecret()
      },
      body: body
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { status: r.status, data: data, retry: r.headers.get("Retry-After") };
      });
    }).then(function (answer) {
      button.disabled = false;
      if (answer.status === 202) { follow(answer.data); return; }
      if (answer.data.error === "sold_out") { close("Sold out"); return; }
      if (answer.data.error === "sale_not_open") { close("The sale is over"); return; }
      var detail = answer.data.detail || "The order did not go through.";
      if (typeof detail !== "string") { detail = JSON.stringify(detail); }
      if (answer.retry) { detail += " Try again in " + answer.retry + " s."; }
      showError(detail);
    }).catch(function () {
      button.disabled = false;
      showError("The shop could not be reached: try again.");
    });
  });
})();
