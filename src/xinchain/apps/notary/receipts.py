"""What a notary receipt proves: a file, whose hash `anchor` or `anchor_batch` anchored."""

from __future__ import annotations

from xinchain.apps.notary.contract import NAME
from xinchain.records import AnchorMethod, ReceiptKinds, Words

NOTARY_RECEIPTS = ReceiptKinds(
    anchors=(
        AnchorMethod(NAME, "anchor", Words("anchors one document hash", "锚定一个文件哈希")),
        AnchorMethod(
            NAME, "anchor_batch", Words("anchors a batch of document hashes", "批量锚定文件哈希")
        ),
    )
)
