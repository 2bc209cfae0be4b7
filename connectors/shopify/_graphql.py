"""Shopify GraphQL Admin API documents used by the connector (API version 2026-07).

Shapes follow shopify.dev/docs/api/admin-graphql/2026-07: ``inventorySetQuantities`` and
``refundCreate`` need the ``@idempotent`` directive from 2026-04 on; ``inventorySetQuantities``
needs ``changeFromQuantity`` on each quantity from 2026-04 on (``null`` opts out of the
compare-and-swap check, as a system that owns the quantity does).
"""

from __future__ import annotations

VARIANT_BY_SKU = """
query variantBySku($query: String!) {
  productVariants(first: 10, query: $query) {
    nodes { id sku inventoryItem { id } }
  }
}
"""

VARIANTS_BY_SKUS = """
query variantsBySkus($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) {
    nodes { id sku inventoryItem { id } }
    pageInfo { hasNextPage }
  }
}
"""

INVENTORY_SET = """
mutation inventorySetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""

FULFILLMENT_ORDERS = """
query fulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    name
    fulfillmentOrders(first: 50) {
      nodes {
        id
        status
        assignedLocation { location { id } }
        lineItems(first: 250) {
          nodes { id remainingQuantity lineItem { id sku } }
        }
      }
    }
  }
}
"""

FULFILLMENT_CREATE = """
mutation fulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""

ORDER_CANCEL = """
mutation orderCancel($orderId: ID!, $reason: OrderCancelReason!, $refundMethod: OrderCancelRefundMethodInput!,
                     $restock: Boolean!, $notifyCustomer: Boolean, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, refundMethod: $refundMethod, restock: $restock,
              notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { code field message }
  }
}
"""

ORDER_TRANSACTIONS = """
query orderTransactions($id: ID!) {
  order(id: $id) {
    id
    transactions(first: 50) { id kind status gateway }
  }
}
"""

REFUND_CREATE = """
mutation refundCreate($input: RefundInput!, $idempotencyKey: String!) {
  refundCreate(input: $input) @idempotent(key: $idempotencyKey) {
    refund { id totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}
"""
