// The H5 live-sale page (/h5/live/<roomId>): reads the room once, then renders everything from liveRoomEvents.
// Served by our server; the only library is the vendored graphql-ws browser build (global `graphqlWs`).
// The shopper's access token comes from `?token=` (the mini-program's web-view passes it) or localStorage.
(function () {
  'use strict';
  const roomId = document.body.dataset.roomId;
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || localStorage.getItem('accessToken') || '';
  if (params.get('token')) localStorage.setItem('accessToken', token);
  const $ = (id) => document.getElementById(id);
  const yuan = (fen) => (fen / 100).toFixed(2);
  const STATUS = { SCHEDULED: '未开始', LIVE: '直播中', PAUSED: '暂停中', ENDED: '已结束' };

  async function gql(query, variables) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    const body = await response.json();
    if (body.errors) throw new Error(body.errors[0].message);
    return body.data;
  }

  // --- rendering ------------------------------------------------------------------------------------------
  const state = { pinned: null, rain: null, auction: null, myBids: new Set(), lastSeq: 0 };

  function renderPinned() {
    const p = state.pinned;
    $('pinned').hidden = !p;
    if (!p) return;
    $('pinned-title').textContent = p.title;
    $('pinned-price').textContent = yuan(p.livePrice);
    $('pinned-was').textContent = yuan(p.originalPrice);
    $('pinned-stock').textContent = String(p.stock);
    if (p.imageUrl) $('pinned-image').src = p.imageUrl;
  }

  function addComment(c) {
    if (document.querySelector(`#comments li[data-id="${c.commentId}"]`)) return;
    const li = document.createElement('li');
    li.dataset.id = c.commentId;
    const who = document.createElement('b');
    who.textContent = c.nickname;
    li.append(who, document.createTextNode(c.text));
    $('comments').append(li);
    while ($('comments').children.length > 200) $('comments').firstChild.remove();
    $('comments').scrollTop = $('comments').scrollHeight;
  }

  function renderAuction() {
    const a = state.auction;
    $('auction').hidden = !a;
    if (!a) return;
    $('auction-title').textContent = a.title || '';
    $('auction-amount').textContent = yuan(a.amount);
    $('auction-bidder').textContent = a.bidder || '';
    $('auction-ends').textContent = new Date(a.endsAt).toLocaleTimeString();
    $('auction-next').textContent = yuan(a.nextMinimum);
    $('bid').hidden = !!a.ended;
    if (a.offer) {
      const until = new Date(a.offer.deadline).toLocaleTimeString();
      $('auction-result').textContent = state.myBids.has(a.offer.amount)
        ? `轮到你了: 请在 ${until} 前以 ¥${yuan(a.offer.amount)} 下单`
        : `${a.offer.bidder} 可以 ¥${yuan(a.offer.amount)} 购买 (至 ${until})`;
    } else if (a.ended) $('auction-result').textContent = a.winner ? `${a.winner} 以 ¥${yuan(a.amount)} 拍得` : '流拍';
    else if (a.outbid) $('auction-result').textContent = '你的出价已被超过';
  }

  const handlers = {
    RoomStatusChanged: (e) => { $('status').textContent = STATUS[e.status] || e.status; },
    ViewerCount: (e) => { $('viewers').textContent = String(e.count); },
    ProductPinned: (e) => { state.pinned = e; renderPinned(); },
    ProductUnpinned: () => { state.pinned = null; renderPinned(); },
    PriceChanged: (e) => {
      if (state.pinned && state.pinned.roomProductId === e.roomProductId) {
        state.pinned.livePrice = e.livePrice; state.pinned.originalPrice = e.originalPrice; renderPinned();
      }
    },
    LiveStockChanged: (e) => {
      if (state.pinned && state.pinned.roomProductId === e.roomProductId) { state.pinned.stock = e.stock; renderPinned(); }
    },
    CommentPosted: addComment,
    CommentsPosted: (e) => { e.comments.forEach(addComment); },
    CommentRemoved: (e) => { const li = document.querySelector(`#comments li[data-id="${e.commentId}"]`); if (li) li.remove(); },
    RedPacketRainStarted: (e) => {
      state.rain = e; $('rain').hidden = false; $('grab').hidden = false;
      $('rain-count').textContent = String(e.packetCount); $('rain-result').textContent = '';
    },
    RedPacketRainEnded: (e) => {
      if (!state.rain || state.rain.rainId !== e.rainId) return;
      $('grab').hidden = true; $('rain-result').textContent += ` 红包雨结束, 抢走 ${e.packetsGrabbed}/${e.packetCount}`;
    },
    AuctionStarted: (e) => {
      state.auction = { auctionId: e.auctionId, title: e.title, amount: e.startPrice, nextMinimum: e.startPrice, endsAt: e.endsAt };
      renderAuction();
    },
    AuctionBid: (e) => {
      const a = state.auction || (state.auction = { auctionId: e.auctionId });
      a.outbid = state.myBids.has(a.amount) && !state.myBids.has(e.amount);
      Object.assign(a, { amount: e.amount, bidder: e.bidder, nextMinimum: e.nextMinimum, endsAt: e.endsAt });
      renderAuction();
    },
    AuctionOffered: (e) => {
      if (!state.auction || state.auction.auctionId !== e.auctionId) return;
      Object.assign(state.auction, { ended: true, offer: e });
      renderAuction();
    },
    AuctionExtended: (e) => { if (state.auction) { state.auction.endsAt = e.endsAt; renderAuction(); } },
    AuctionEnded: (e) => {
      if (!state.auction) return;
      Object.assign(state.auction, { ended: true, winner: e.winner, amount: e.winningAmount || state.auction.amount });
      renderAuction();
    },
  };

  // --- buttons ----------------------------------------------------------------------------------------------
  $('grab').addEventListener('click', async () => {
    if (!state.rain) return;
    $('grab').disabled = true;
    try {
      const data = await gql('mutation($id: ID!) { redPacketGrab(rainId: $id) { packet { amount prize } errors { code message } } }', { id: state.rain.rainId });
      const r = data.redPacketGrab;
      $('rain-result').textContent = r.packet ? `抢到 ${r.packet.amount} 积分!` : (r.errors[0] || {}).message || '没抢到';
    } catch (error) { $('rain-result').textContent = String(error.message || error); }
    $('grab').disabled = false;
  });

  $('bid').addEventListener('click', async () => {
    const a = state.auction;
    if (!a) return;
    const amount = a.nextMinimum;
    $('bid').disabled = true;
    try {
      const data = await gql('mutation($id: ID!, $amount: Int!) { auctionBid(auctionId: $id, amount: $amount) { bid { amount } errors { code message } } }', { id: a.auctionId, amount });
      const r = data.auctionBid;
      if (r.bid) { state.myBids.add(r.bid.amount); $('auction-result').textContent = `出价 ¥${yuan(r.bid.amount)} 成功`; }
      else $('auction-result').textContent = (r.errors[0] || {}).message || '出价失败';
    } catch (error) { $('auction-result').textContent = String(error.message || error); }
    $('bid').disabled = false;
  });

  $('comment-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('comment-text').value.trim();
    if (!text) return;
    try {
      const data = await gql('mutation($roomId: ID!, $text: String!) { liveCommentPost(roomId: $roomId, text: $text) { comment { status } errors { message } } }', { roomId, text });
      const r = data.liveCommentPost;
      if (r.errors.length) alert(r.errors[0].message); else $('comment-text').value = '';
    } catch (error) { alert(String(error.message || error)); }
  });

  // --- the room, then its events -------------------------------------------------------------------------------
  const EVENTS = `subscription($roomId: ID!, $afterSeq: Int) { liveRoomEvents(roomId: $roomId, afterSeq: $afterSeq, batchComments: true) {
    __typename ... on LiveEvent { seq }
    ... on RoomStatusChanged { status }
    ... on ViewerCount { count }
    ... on ProductPinned { roomProductId title imageUrl livePrice originalPrice stock }
    ... on ProductUnpinned { roomProductId }
    ... on PriceChanged { roomProductId livePrice originalPrice }
    ... on LiveStockChanged { roomProductId stock }
    ... on CommentPosted { commentId nickname text }
    ... on CommentsPosted { comments { commentId nickname text } }
    ... on CommentRemoved { commentId }
    ... on RedPacketRainStarted { rainId packetCount endsAt }
    ... on RedPacketRainEnded { rainId packetCount packetsGrabbed }
    ... on AuctionStarted { auctionId title startPrice increment endsAt }
    ... on AuctionBid { auctionId amount bidder nextMinimum endsAt }
    ... on AuctionExtended { auctionId endsAt }
    ... on AuctionEnded { auctionId winningAmount winner }
    ... on AuctionOffered { auctionId amount bidder rank deadline }
  } }`;
  const ROOM = `query($id: ID!) { liveRoom(id: $id) { title status viewerCount eventSeq
    pinnedProduct { id livePrice stock originalPrice product { title } }
    comments(last: 50) { id nickname text } } }`;

  async function start() {
    const { liveRoom: room } = await gql(ROOM, { id: roomId });
    $('title').textContent = room.title;
    document.title = room.title;
    $('status').textContent = STATUS[room.status] || room.status;
    $('viewers').textContent = String(room.viewerCount);
    const p = room.pinnedProduct;
    if (p) {
      state.pinned = { roomProductId: p.id, title: p.product ? p.product.title : '', livePrice: p.livePrice, originalPrice: p.originalPrice, stock: p.stock, imageUrl: '' };
      renderPinned();
    }
    room.comments.forEach((c) => addComment({ commentId: c.id, nickname: c.nickname, text: c.text }));
    state.lastSeq = room.eventSeq;
    // graphql-ws sends this same payload again after a reconnect: keeping afterSeq current makes the server
    // replay exactly what the page missed meanwhile (and the seq check below drops anything seen twice).
    const payload = { query: EVENTS, variables: { roomId, afterSeq: state.lastSeq } };
    const client = graphqlWs.createClient({
      url: location.origin.replace(/^http/, 'ws') + '/graphql',
      connectionParams: token ? { accessToken: token } : {},
      retryAttempts: Infinity,
      shouldRetry: () => true,
      on: { connected: () => { document.body.dataset.ready = '1'; } },
    });
    client.subscribe(payload, {
      next: ({ data }) => {
        const event = data && data.liveRoomEvents;
        if (!event || event.seq <= state.lastSeq) return;
        state.lastSeq = event.seq;
        payload.variables.afterSeq = event.seq;
        const handle = handlers[event.__typename];
        if (handle) handle(event);
      },
      error: (error) => console.error('live events:', JSON.stringify(error)),
      complete: () => {},
    });
  }

  start().catch((error) => { $('title').textContent = '加载失败: ' + (error.message || error); });
})();
