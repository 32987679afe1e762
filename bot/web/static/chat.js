// The web chat page: sends text or a button's payload to /api/chat and shows
// the replies. Bot text is inserted as text, never as HTML.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  let user = localStorage.getItem("chat-user");
  if (!user) {
    user = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^A-Za-z0-9-]/g, "");
    localStorage.setItem("chat-user", user);
  }

  function bubble(text, who) {
    const div = document.createElement("div");
    div.className = "msg " + who;
    div.textContent = text;
    log.appendChild(div);
    div.scrollIntoView({ block: "end" });
    return div;
  }

  function buttons(list) {
    const row = document.createElement("div");
    row.className = "buttons";
    list.forEach(function (b) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = b.title;
      button.addEventListener("click", function () { send({ payload: b.payload }, b.title); });
      row.appendChild(button);
    });
    log.appendChild(row);
  }

  function show(messages) {
    messages.forEach(function (m) {
      if (m.photo) {
        const img = document.createElement("img");
        img.className = "photo";
        img.alt = "";
        img.src = "/media/" + encodeURIComponent(m.photo);
        log.appendChild(img);
      }
      if (m.text) bubble(m.text, "bot");
      if (m.buttons && m.buttons.length) buttons(m.buttons);
    });
  }

  // Reminders and notices sent while the page was closed (or is open): collected, each once.
  async function collect() {
    if (document.visibilityState === "hidden") return;
    try {
      const response = await fetch("/api/chat/inbox?user=" + encodeURIComponent(user), { cache: "no-store" });
      if (response.ok) show((await response.json()).messages || []);
    } catch (e) { /* offline: try again at the next tick */ }
  }

  async function send(body, shown) {
    bubble(shown, "me");
    const waiting = bubble("Đang trả lời…", "bot typing");
    body.user = user;
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await response.json();
      waiting.remove();
      if (data.messages) {
        show(data.messages);
      } else {
        bubble("Xin lỗi, tin nhắn chưa gửi được (" + (data.detail || response.status) + ").", "bot");
      }
    } catch (e) {
      waiting.remove();
      bubble("Mất kết nối. Anh/chị vui lòng thử lại.", "bot");
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ text: text }, text);
  });

  send({ payload: "/greet" }, "Xin chào").then(collect);
  setInterval(collect, 30000);
  document.addEventListener("visibilitychange", collect);
})();
