// Live updates over websockets for the order status page, the product page and the
// sale board. Vanilla JS, nothing from a CDN. Reconnects with a growing pause; the
// server sends the current state first on every (re)connect.
(function () {
  "use strict";
  var script = document.currentScript;
  var RANK = { accepted: 0, queued: 1, in_warehouse: 2, failed: 2, fulfilled: 3 };
  var LABEL = {
    accepted: "accepted", queued: "queued for the warehouse",
    in_warehouse: "in the warehouse", fulfilled: "fulfilled", failed: "waiting for the warehouse"
  };

  function connect(path, onMessage) {
    var pause = 500;
    function open() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + path);
      socket.onmessage = function (event) { pause = 500; onMessage(JSON.parse(event.data)); };
      socket.onclose = function (event) {
        if (event.code >= 4400 && event.code < 4500) { return; }
        setTimeout(open, pause);
        pause = Math.min(pause * 2, 10000);
      };
    }
    open();
  }

  var shown = -1;
  function showOrder(state) {
    var rank = RANK[state.status];
    // A late push never moves the page backwards, except a replayed failed order.
    if (rank < shown && state.status !== "fulfilled") { return; }
    shown = rank;
    var section = document.querySelector(".order-status");
    section.setAttribute("data-status", state.status);
    document.querySelector("[data-live=status-label]").textContent = LABEL[state.status] || state.status;
    document.querySelector("[data-live=failed]").hidden = state.status !== "failed";
    var steps = document.querySelectorAll(".journey li");
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i].getAttribute("data-step");
      steps[i].classList.toggle("done", RANK[step] <= rank && state.status !== "failed" || (state.status === "failed" && RANK[step] < 2));
      steps[i].classList.toggle("current", step === state.status);
    }
  }

  function showBoard(board) {
    var fields = document.querySelectorAll("[data-board]");
    for (var i = 0; i < fields.length; i++) {
      var name = fields[i].getAttribute("data-board");
      if (name === "sold_out_label") {
        fields[i].textContent = board.sold_out ? "Sold out" : (board.status === "open" ? "On sale" : "Sale closed");
      } else if (name in board) {
        fields[i].textContent = board[name];
      }
    }
    var label = document.querySelector("[data-live=remaining-label]");
    if (label) {
      label.textContent = board.status !== "open" ? "Sale closed" : (board.remaining > 0 ? board.remaining + " left" : "Sold out");
      label.className = "stock " + (board.remaining > 10 ? "stock-ok" : board.remaining > 0 ? "stock-low" : "stock-out");
      var form = document.querySelector("[data-live=buy-form] button");
      if (form) { form.disabled = board.remaining <= 0 || board.status !== "open"; }
    }
  }

  var orderPath = script.getAttribute("data-order-ws");
  if (orderPath) { connect(orderPath, function (m) { if (m.type === "order.state") { showOrder(m.state); } }); }
  var boardPath = script.getAttribute("data-board-ws");
  if (boardPath) { connect(boardPath, function (m) { if (m.type === "board.state") { showBoard(m.board); } }); }
})();
