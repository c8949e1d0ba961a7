package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

func (s *Server) listMembers(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListMembers(c.UserContext(), s.db, who.OrgID, after, limit)
	if err != nil {
		return err
	}
	return writePage(c, rows, limit, func(m store.MemberView) store.Keyset { return store.Keyset{CreatedAt: m.CreatedAt, ID: m.ID} })
}

type changeRoleRequest struct {
	Role domain.Role `json:"role"`
}

func (r *changeRoleRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// changeRole changes a member's role. Granting or taking away owner is for
// owners only, and granting it needs a recent authentication; the last
// owner keeps the role.
func (s *Server) changeRole(c *fiber.Ctx, who *caller) error {
	var req changeRoleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	memberID := c.Params("member_id")
	check := func(target store.MemberView) error {
		if err := who.mayGrant(domain.Role(target.Role), req.Role); err != nil {
			return err
		}
		if req.Role == domain.RoleOwner && target.Role != string(domain.RoleOwner) {
			return s.requireRecentAuth(who)
		}
		return nil
	}
	_, after, err := store.ChangeRole(c.UserContext(), s.db, who.OrgID, memberID, req.Role, check, s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, after)
}

// removeMember removes a member; a member may remove itself (leave). Only
// owners remove owners; the last owner can't be removed or leave.
func (s *Server) removeMember(c *fiber.Ctx, who *caller) error {
	memberID := c.Params("member_id")
	leaving := memberID == who.MemberID
	check := func(target store.MemberView) error {
		if leaving {
			return nil
		}
		return who.mayGrant(domain.Role(target.Role))
	}
	removed, err := store.RemoveMember(c.UserContext(), s.db, who.OrgID, memberID, check, s.eventBase(c, who), leaving)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, removed)
}
