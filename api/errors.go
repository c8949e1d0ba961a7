package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// statusOf is the one place an error code becomes an HTTP status.
func statusOf(code domain.Code) int {
	switch code {
	case domain.CodeBadRequest:
		return http.StatusBadRequest
	case domain.CodeUnauthenticated:
		return http.StatusUnauthorized
	case domain.CodeForbidden, domain.CodeMFARequired, domain.CodeReauthenticationRequired:
		return http.StatusForbidden
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case domain.CodeConflict, domain.CodePlanManagedByBilling:
		return http.StatusConflict
	case domain.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case domain.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case domain.CodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case domain.CodeRateLimited:
		return http.StatusTooManyRequests
	case domain.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// databaseRetryAfter is the Retry-After of an answer given while the
// database cannot be reached: a restart takes seconds.
const databaseRetryAfter = 2 * time.Second

// fiberCodes turns the errors Fiber raises itself (no route, wrong method,
// body too large) into the API's codes.
var fiberCodes = map[int]*domain.Error{
	fiber.StatusNotFound:              {Code: domain.CodeNotFound, Message: "no such route"},
	fiber.StatusMethodNotAllowed:      {Code: domain.CodeMethodNotAllowed, Message: "method not allowed on this route"},
	fiber.StatusRequestEntityTooLarge: {Code: domain.CodePayloadTooLarge, Message: "request body too large"},
	fiber.StatusBadRequest:            {Code: domain.CodeBadRequest, Message: "malformed request"},
	fiber.StatusUnsupportedMediaType:  {Code: domain.CodeUnsupportedMedia, Message: "unsupported content type"},
	// The server's read buffer (4 KiB) holds the request line and headers.
	fiber.StatusRequestHeaderFieldsTooLarge: {Code: domain.CodeBadRequest, Message: "the request line and headers are too large (at most 4 KiB)"},
	fiber.StatusRequestTimeout:              {Code: domain.CodeBadRequest, Message: "the request was not received in time"},
}

// errorBody is the API's error envelope.
type errorBody struct {
	Error struct {
		Code        domain.Code         `json:"code"`
		Message     string              `json:"message"`
		FieldErrors []domain.FieldError `json:"field_errors"`
	} `json:"error"`
	Meta struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
}

// writeError writes err as the error envelope. An error that is not a
// *domain.Error is internal: the caller sees INTERNAL_ERROR and the request
// id, the log line sees the error.
func writeError(c *fiber.Ctx, err error) error {
	var de *domain.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &fe) && fiberCodes[fe.Code] != nil:
		de = fiberCodes[fe.Code]
		if fe.Code == fiber.StatusNotFound || fe.Code == fiber.StatusMethodNotAllowed {
			c.Locals(localUnmatched, true)
		}
	case store.Unavailable(err):
		// Postgres is down or restarting: the client may retry (a
		// mutation with the same Idempotency-Key), nothing was written.
		zerolog.Ctx(c.UserContext()).Warn().Err(err).Msg("database unavailable")
		de = &domain.Error{Code: domain.CodeUnavailable, RetryAfter: databaseRetryAfter,
			Message: "the service is briefly unavailable; retry after Retry-After seconds (a mutation with the same Idempotency-Key)"}
	default:
		zerolog.Ctx(c.UserContext()).Error().Err(err).Msg("internal error")
		de = &domain.Error{Code: domain.CodeInternal, Message: "internal error; quote the request_id to support"}
	}
	var body errorBody
	body.Error.Code = de.Code
	body.Error.Message = de.Message
	body.Error.FieldErrors = de.FieldErrors
	if body.Error.FieldErrors == nil {
		body.Error.FieldErrors = []domain.FieldError{}
	}
	body.Meta.RequestID = requestID(c)
	if de.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(int(de.RetryAfter.Seconds()), 1)))
	}
	return c.Status(statusOf(de.Code)).JSON(body)
}
