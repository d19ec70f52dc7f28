// The Draw tab's drawing pad (see drawing_pad.py): white, round strokes on a black square, drawn with a mouse,
// a pen or a finger. The picture goes to the server the moment a stroke ends, and after Undo or Clear.

const pads = new Map(); // component key -> its pad, kept across the page's reruns and moved if Streamlit remounts it
const RESEND_MS = 5000; // a picture no run of the page has read by then is sent again

function mount() {
  const root = document.createElement("div");
  root.className = "pad";
  root.innerHTML = `<canvas aria-label="Drawing pad: draw a digit"></canvas>
    <div class="tools"><button class="undo" type="button" title="Take back the last stroke">Undo</button>
    <button class="clear" type="button" title="Empty the pad">Clear</button></div>`;
  const canvas = root.querySelector("canvas");
  const pad = {root, canvas, ctx: canvas.getContext("2d"), strokes: [], stroke: null, width: null, side: 0,
               scale: 1, clears: null, send: null, event: null, seq: 0, sent: null, read: null, timer: null};
  const at = (event) => { // a pointer's position in pad pixels (side × side, whatever the screen's pixels)
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.side / box.width, (event.clientY - box.top) * pad.side / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || pad.stroke) return;
    canvas.setPointerCapture(event.pointerId);
    pad.stroke = {pointer: event.pointerId, width: pad.width, points: [at(event)]};
    dot(pad.ctx, pad.stroke.points[0], pad.width);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!pad.stroke || event.pointerId !== pad.stroke.pointer) return; // a second finger does not draw
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const move of moves.length ? moves : [event]) {
      const points = pad.stroke.points, next = at(move);
      segment(pad.ctx, points[points.length - 1], next, pad.stroke.width); // only the new piece is painted
      points.push(next);
    }
  });
  const end = (event) => {
    if (!pad.stroke || event.pointerId !== pad.stroke.pointer) return;
    pad.strokes.push({width: pad.stroke.width, points: pad.stroke.points});
    pad.stroke = null;
    send(pad);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end); // a stroke the browser took away without a pointerup
  root.querySelector("button.undo").addEventListener("click", () => {
    if (!pad.stroke && pad.strokes.pop()) { paint(pad); send(pad); } // not in the middle of a stroke
  });
  root.querySelector("button.clear").addEventListener("click", () => {
    if (pad.stroke) return;
    pad.strokes = [];
    paint(pad);
    send(pad);
  });
  return pad;
}

function dot(ctx, [x, y], width) {
  ctx.beginPath();
  ctx.arc(x, y, width / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function segment(ctx, [x0, y0], [x1, y1], width) {
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

function paint(pad) { // the whole picture again (after Undo, Clear or a resize)
  const {ctx} = pad;
  ctx.setTransform(pad.scale, 0, 0, pad.scale, 0, 0); // drawn in pad pixels, shown sharp on a high-density screen
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.side, pad.side);
  ctx.fillStyle = ctx.strokeStyle = "#fff";
  ctx.lineCap = ctx.lineJoin = "round";
  for (const {width, points} of pad.strokes) {
    dot(ctx, points[0], width);
    for (let i = 1; i < points.length; i++) segment(ctx, points[i - 1], points[i], width);
  }
  tools(pad);
}

function tools(pad) { // Undo and Clear only when there is something to take away
  for (const button of pad.root.querySelectorAll("button")) button.disabled = pad.strokes.length === 0;
}

function send(pad) { // the picture as a PNG data URL, or null when nothing is drawn; tagged with the clears seen
  tools(pad);
  pad.seq += 1;
  pad.sent = {png: pad.strokes.length ? picture(pad) : null, clears: pad.clears, seq: pad.seq};
  deliver(pad, 0);
}

function picture(pad) { // a side × side PNG data URL: the canvas itself, or it scaled down from a denser screen
  if (pad.scale === 1) return pad.canvas.toDataURL("image/png");
  const small = document.createElement("canvas");
  small.width = small.height = pad.side;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(pad.canvas, 0, 0, pad.side, pad.side);
  return small.toDataURL("image/png");
}

function deliver(pad, tries) { // sent again until a run of the page says it read it: a busy server can leave it unread
  clearTimeout(pad.timer);
  pad.send("drawing", tries ? {...pad.sent, tries} : pad.sent);
  dispatchEvent(new Event(pad.event)); // for what else reads the drawing (studio/wake.py)
  pad.timer = setTimeout(() => { if (pad.read !== pad.sent.seq) deliver(pad, tries + 1); }, RESEND_MS);
}

export default function (component) {
  const {data, key, parentElement, setStateValue} = component;
  const host = parentElement.querySelector(".pad-host");
  let pad = pads.get(key);
  if (!pad) {
    pad = mount();
    pads.set(key, pad);
  }
  if (!host.contains(pad.root)) host.appendChild(pad.root); // its strokes go with it
  pad.send = setStateValue;
  pad.event = data.event;
  pad.width = data.stroke;
  pad.read = data.read; // the number of the last picture the server read (null: none yet)
  pad.seq = Math.max(pad.seq, data.read ?? 0); // a pad mounted anew goes on numbering after it
  const cleared = pad.clears !== null && data.clears !== pad.clears; // the server emptied it (a digit was kept)
  pad.clears = data.clears;
  const scale = window.devicePixelRatio || 1;
  if (data.side !== pad.side || scale !== pad.scale || cleared) {
    pad.side = data.side;
    pad.scale = scale;
    pad.canvas.width = pad.canvas.height = Math.round(data.side * scale);
    pad.canvas.style.width = pad.canvas.style.height = `${data.side}px`;
    pad.strokes = cleared ? [] : pad.strokes;
    pad.stroke = null;
    paint(pad);
  }
}
