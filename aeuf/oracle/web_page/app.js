// The annotation page: shows the pair the server gives this annotator, sends key presses,
// and shows the next pair only once the server says the answer is saved. No inline script;
// the server's HTML is already sanitised (markdown-it with HTML off, then nh3).
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const $ = (id) => document.getElementById(id);
  let current = null;  // the key of the pair shown
  let busy = false;
  let timer = null;

  function headers() { return { "X-Token": token, "Content-Type": "application/json" }; }

  function say(text) { $("status").textContent = text; }

  function progress(s) {
    const pace = s.pace == null ? "" : ` · your pace ${s.pace.toFixed(1)} s/answer`;
    const run = s.run ? ` · run: ${s.run[0]} of at most ${s.run[1]}` : "";
    $("progress").textContent = `round ${s.round} · you answered ${s.answered} · ` +
      `${s.left} left in this round${run}${pace}`;
  }

  // A multi-turn prompt is shown turn by turn: the role as text, the turn's sanitised HTML.
  function showPrompt(pair) {
    const box = $("prompt");
    if (!pair.turns) { box.innerHTML = pair.prompt; return; }
    box.textContent = "";
    pair.turns.forEach((t) => {
      const turn = document.createElement("div");
      turn.className = "turn";
      const role = document.createElement("div");
      role.className = "role";
      role.textContent = t.role;
      const text = document.createElement("div");
      text.className = "text";
      text.innerHTML = t.html;
      turn.append(role, text);
      box.append(turn);
    });
  }

  function show(s) {
    progress(s);
    $("undo").disabled = !s.undo;
    clearTimeout(timer);
    if (s.pair) {
      if (s.pair.key !== current) {
        current = s.pair.key;
        $("pair").dataset.key = current;
        showPrompt(s.pair);
        $("left").innerHTML = s.pair.left;
        $("right").innerHTML = s.pair.right;
      }
      $("pair").hidden = false;
      say("Which response is better? Press 1, 2, t, s, u or ?");
      return;
    }
    current = null;
    $("pair").dataset.key = "";
    $("pair").hidden = true;
    if (s.ended) { say("The run has ended. Thank you!"); return; }
    say(s.waiting ? "Next round in a moment…"
                  : "Others are finishing this round; your next pair comes in a moment…");
    timer = setTimeout(poll, 700);
  }

  function lost() {
    current = null;
    $("pair").dataset.key = "";
    $("pair").hidden = true;
    say("The server is not answering (the run ended or stopped). Every saved answer is kept.");
  }

  async function call(path, body) {
    const init = body === undefined ? { headers: headers() }
      : { method: "POST", headers: headers(), body: JSON.stringify(body) };
    const reply = await fetch(path, init);
    if (reply.status === 403) { say("This link's token is not valid."); return null; }
    return reply.json();
  }

  async function poll() {
    try { const s = await call("/api/state"); if (s) show(s); } catch (e) { lost(); }
  }

  async function send(path, body) {
    if (busy) return;
    busy = true;
    say("Saving…");
    try {
      const s = await call(path, body);
      if (s) {
        if (s.saved === false) say("Not saved: the run stopped.");
        if (path === "/api/undo") current = null;  // show the undone pair again
        show(s);
      }
    } catch (e) { lost(); }
    busy = false;
  }

  function choose(choice) {
    if (current) send("/api/answer", { key: current, choice: choice });
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (["1", "2", "t", "s"].includes(k)) choose(k);
    else if (k === "u") send("/api/undo", {});
    else if (k === "?") $("help").hidden = !$("help").hidden;
    else return;
    ev.preventDefault();
  });
  document.querySelectorAll("button[data-choice]").forEach((b) =>
    b.addEventListener("click", () => choose(b.dataset.choice)));
  $("undo").addEventListener("click", () => send("/api/undo", {}));
  $("helpbtn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  poll();
})();
