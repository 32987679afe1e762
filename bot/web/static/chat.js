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
        data.messages.forEach(function (m) {
          if (m.text) bubble(m.text, "bot");
          if (m.buttons && m.buttons.length) buttons(m.buttons);
        });
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

  send({ payload: "/greet" }, "Xin chào");
})();
